"""Turn a grid's size settings into concrete (samples, epochs) pairs for one task and seed."""

from __future__ import annotations

import functools


def resolve(grid, task, root: str, seed: int) -> list[tuple[int, int]]:
    """Return the training sizes of ``task`` that ``grid`` asks for, with their epochs.

    Explicit ``grid.sizes`` win; otherwise the task's sizes (``study`` mode: the study's counts,
    no data read; ``fraction`` mode: the study's fractions of this seed's training pool),
    narrowed by ``grid.size_picks``.

    Args:
        grid: The grid block.
        task: The task's spec.
        root: Dataset root (read only in ``fraction`` mode).
        seed: Seed of the split.

    Returns:
        ``(samples, epochs)`` pairs, smallest first.
    """
    if grid.sizes:
        return [(int(size), task.epochs_for(int(size))) for size in grid.sizes]
    if grid.size_mode == "fraction":
        sizes = task.training_sizes(_pool_size(root, task.name, int(seed)), mode="fraction")
    else:
        sizes = task.sizes
    if grid.size_picks:
        try:
            sizes = sorted({sizes[pick] for pick in grid.size_picks}, key=lambda s: s.samples)
        except IndexError:
            raise ValueError(
                f"size_picks {list(grid.size_picks)} out of range for task {task.name!r}, "
                f"which has {len(sizes)} sizes"
            ) from None
    return [(size.samples, size.epochs) for size in sizes]


@functools.lru_cache(maxsize=256)
def _pool_size(root: str, task_name: str, seed: int) -> int:
    from raypi.sweep._inputs import read_split

    return len(read_split(root, task_name, seed).train_ids)
