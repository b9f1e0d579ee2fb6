"""Build summaries: per task counts per class, patients, split, and every dropped row with why."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from raypi.data._published import examples
from raypi.tasks import TaskSpec


@dataclass
class Drops:
    """Rows a build left out, grouped by reason (counts and a few example ids, never text)."""

    counts: dict[str, int] = field(default_factory=dict)
    """Number of rows dropped per reason."""
    example_ids: dict[str, list[str]] = field(default_factory=dict)
    """Up to five ids per reason, so a user can look the rows up."""

    def add(self, reason: str, ids: Iterable) -> None:
        """Record rows dropped for ``reason`` (no-op for none).

        Args:
            reason: Why, in words ("no admission spans the study time").
            ids: Ids of the dropped rows (image, study or admission ids).
        """
        ids = list(ids)
        if not ids:
            return
        self.counts[reason] = self.counts.get(reason, 0) + len(ids)
        self.example_ids.setdefault(reason, []).extend(examples(ids))
        self.example_ids[reason] = self.example_ids[reason][:5]

    def to_dict(self) -> dict:
        """Return ``{reason: {"rows": n, "examples": [...]}}``."""
        return {
            reason: {"rows": count, "examples": self.example_ids.get(reason, [])}
            for reason, count in self.counts.items()
        }


def task_summary(spec: TaskSpec, table: pd.DataFrame, drops: Drops, rule: str) -> dict:
    """Summarise one built task table.

    Args:
        spec: The task's spec (class names).
        table: The task table (``image_id``, ``patient_id``, ``label`` [, ``split``]).
        drops: Rows left out on the way, by reason.
        rule: One sentence stating the label rule used.

    Returns:
        A JSON-ready dict: images, patients, per-class counts, split counts, drops, rule.
    """
    counts = table["label"].value_counts()
    summary = {
        "task": spec.name,
        "rule": rule,
        "images": int(len(table)),
        "patients": int(table["patient_id"].nunique()),
        "classes": {name: int(counts.get(index, 0)) for index, name in enumerate(spec.classes)},
        "dropped": drops.to_dict(),
    }
    if "split" in table.columns:
        summary["split"] = {
            split: {
                name: int(((table["split"] == split) & (table["label"] == index)).sum())
                for index, name in enumerate(spec.classes)
            }
            for split in ("train", "val")
        }
    return summary


def format_summary(summary: dict) -> str:
    """Render a build summary as short plain-text lines for the terminal."""
    lines = [f"dataset {summary['name']} → {summary['out']}: {summary['images']} images"]
    for name, count in summary.get("reports", {}).items():
        lines.append(f"  reports {name}: {count}")
    for reason, entry in summary.get("dropped", {}).items():
        lines.append(f"  dropped ({reason}): {entry['rows']}")
    for task in summary["tasks"].values():
        classes = ", ".join(f"{name}={count}" for name, count in task["classes"].items())
        lines.append(
            f"task {task['task']}: {task['images']} images, {task['patients']} patients [{classes}]"
        )
        for reason, entry in task["dropped"].items():
            lines.append(f"  dropped ({reason}): {entry['rows']}")
    return "\n".join(lines)
