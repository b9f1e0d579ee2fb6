"""Figs. 11–13 (teacher vs student per seed; per-seed AUCs) rendered, and panel labels that
never reach into the panel above or below."""

import matplotlib.pyplot as plt
import pytest

from raypi.report import _plot
from raypi.report.load import load_results
from raypi.report.seeds import per_seed, teacher_student
from raypi.report.synthetic import write_synthetic_results

TASKS = {"demo_prognostic": (100, 300), "demo_diagnostic": (100,)}
ENCODERS = ("demo_vit_ssl", "demo_vit_clip")


@pytest.fixture(scope="module")
def trials(tmp_path_factory):
    root = tmp_path_factory.mktemp("seeds")
    folder = write_synthetic_results(str(root / "r"), tasks=TASKS, encoders=ENCODERS, seeds=5,
                                     failures=0)  # fmt: skip
    return load_results([folder]).trials


@pytest.mark.parametrize(
    ("make", "methods"),
    [(teacher_student, {"teacher", "distill"}), (per_seed, {"image", "distill", "self_distill"})],
)
def test_per_seed_figures_hold_every_seed_of_every_arm(trials, tmp_path, make, methods):
    figure = make(trials, "auc", str(tmp_path))
    assert figure.path and (tmp_path / f"{figure.name}.png").stat().st_size > 10_000
    table = figure.table
    assert set(table["method"]) <= methods and {"distill"} <= set(table["method"])
    counts = table.groupby(["task", "size", "encoder", "method"])["seed"].nunique()
    assert (counts == 5).all()
    # One value per seed: the figure draws seeds, it does not average them.
    cells = table.groupby(["task", "size", "encoder", "method", "seed"]).size()
    assert (cells == 1).all()
    assert len(table.groupby(["task", "size", "encoder"])) == 6  # 3 (task, size) × 2 backbones


def _rows_apart(fig) -> list[float]:
    """Gaps in inches between each panel's drawn extent and the one below it (same column)."""
    renderer = fig.canvas.get_renderer()
    boxes = [(ax.get_subplotspec(), ax.get_tightbbox(renderer)) for ax in fig.axes]
    gaps = []
    for spec, box in boxes:
        for other, below in boxes:
            if other.colspan == spec.colspan and other.rowspan.start == spec.rowspan.stop:
                gaps.append((box.y0 - below.y1) / fig.dpi)
    return gaps


def test_titles_never_overlap_the_tick_labels_above(tmp_path):
    fig, axes = _plot.panel_grid(4, ncols=2)
    labels = ["Demo ViT (self-supervised)", "Demo ViT (image-report)", "A long backbone name"]
    for ax in axes:
        ax.bar(range(3), [0.6, 0.7, 0.65])
        _plot.category_axis(ax, labels)
        ax.set_xlabel("image backbone")
        ax.set_title("Demo Outcome, n = 1,000\nDemo ViT (image-report)")
    _plot._fit(fig, _plot.CATEGORY_BOTTOM)
    fig.canvas.draw()
    gaps = _rows_apart(fig)
    assert len(gaps) == 2 and min(gaps) > 0, gaps
    lowest = min(ax.get_tightbbox(fig.canvas.get_renderer()).y0 for ax in axes)
    assert lowest >= 0  # the last row's labels stay inside the figure
    plt.close(fig)
