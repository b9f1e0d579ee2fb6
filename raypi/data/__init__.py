"""Datasets: validating readers/writers of dataset and task tables, and the dataset builders."""

from raypi.data.images import check_images
from raypi.data.tables import TableError, read_dataset, read_meta, read_task

__all__ = ["TableError", "check_images", "read_dataset", "read_meta", "read_task"]
