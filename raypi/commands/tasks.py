"""``raypi tasks``: print the task table (classes, validation, training sizes → epochs, τ)."""

from __future__ import annotations

import argparse
import json

from raypi.tasks import TaskSpec, list_tasks


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tasks`` subcommand.

    Args:
        subparsers: The ``raypi`` command's subparsers.
    """
    parser = subparsers.add_parser(
        "tasks",
        help="show the study's and the demo's tasks",
        description="Show each task: dataset, kind, classes, validation share, training "
        "sizes → epochs, and the default distillation temperature τ.",
    )
    parser.add_argument(
        "--dataset", choices=("mimic", "inspect", "demo"), help="only the tasks of this dataset"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def _validation(spec: TaskSpec) -> str:
    if spec.fixed_split is not None:
        return f"fixed {spec.fixed_split['val_per_class']}/class"
    return f"{spec.val_share:.0%}"


def _sizes(spec: TaskSpec) -> str:
    return ", ".join(
        (f"{size.fraction * 100:g}% " if size.fraction is not None else "")
        + f"{size.samples}→{size.epochs}"
        for size in spec.sizes
    )


def _row(spec: TaskSpec) -> dict:
    return {
        "name": spec.name,
        "dataset": spec.dataset,
        "kind": spec.kind,
        "classes": " | ".join(spec.classes),
        "validation": _validation(spec),
        "sizes (samples→epochs)": _sizes(spec),
        "tau": f"{spec.tau:g}",
    }


def run(args: argparse.Namespace) -> int:
    """Print the task table.

    Args:
        args: Parsed arguments (``dataset``, ``json``).

    Returns:
        Exit code 0.
    """
    rows = [_row(spec) for spec in list_tasks(args.dataset)]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    headers = list(rows[0])
    widths = [max(len(header), *(len(row[header]) for row in rows)) for header in headers]
    for cells in [dict(zip(headers, headers)), *rows]:
        print("  ".join(cells[key].ljust(width) for key, width in zip(headers, widths)).rstrip())
    return 0
