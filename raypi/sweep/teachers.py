"""Teacher outputs: a stage-1 model's kept-epoch logits on its training rows, and reading them.

Logits, not probabilities, are stored, so every student turns them into soft targets at its
own τ with ``raypi.train.objectives.teacher_targets`` (the one place τ acts).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from raypi import io
from raypi.train.objectives import teacher_targets

TEACHER_SCHEMA = pa.schema([("image_id", pa.string()), ("logits", pa.list_(pa.float32()))])
"""``teachers/<key>.parquet``: kept-epoch logits of a stage-1 model on its training rows."""


def teacher_path(results: str, key: str) -> str:
    """Return where a stage-1 model's training-row logits are stored."""
    return io.join(results, "teachers", f"{key}.parquet")


def write_teacher_outputs(
    results: str, key: str, image_ids: list[str], logits: torch.Tensor
) -> None:
    """Store a stage-1 model's best-epoch logits on its training rows.

    Logits, not probabilities, are kept so that every student recomputes
    ``softmax(logits / τ)`` at its own τ.

    Args:
        results: Results folder.
        key: The stage-1 trial's key.
        image_ids: Training image ids, one per row of ``logits``.
        logits: ``[N, C]`` logits.
    """
    values = logits.detach().float().cpu().numpy()
    table = pa.Table.from_pydict(
        {"image_id": list(image_ids), "logits": [row.tolist() for row in values]}, TEACHER_SCHEMA
    )
    io.write_parquet(table, teacher_path(results, key))


def teacher_probs(results: str, key: str, image_ids: list[str], tau: float) -> torch.Tensor:
    """Return ``softmax(logits / τ)`` of a stored teacher for ``image_ids``, in their order.

    Args:
        results: Results folder.
        key: The teacher's trial key.
        image_ids: Training rows of the student (the teacher's rows).
        tau: The student's temperature.

    Returns:
        ``[N, C]`` probabilities.

    Raises:
        FileNotFoundError: The teacher has no stored outputs.
        ValueError: The teacher lacks some of the rows.
    """
    path = teacher_path(results, key)
    if not io.exists(path):
        raise FileNotFoundError(f"teacher {key} has no stored outputs at {path}")
    table = io.read_parquet(path).to_pandas().set_index("image_id")
    missing = pd.Index(image_ids).difference(table.index)
    if len(missing):
        raise ValueError(
            f"teacher {key} outputs lack {len(missing)} training rows, e.g. {missing[0]}"
        )
    rows = table.loc[list(image_ids), "logits"].tolist()
    return teacher_targets(torch.from_numpy(np.stack(rows).astype(np.float32)), tau)
