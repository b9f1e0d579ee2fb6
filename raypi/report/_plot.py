"""Shared matplotlib pieces: panel grids, CI bands, grouped bars, missing-data panels."""

from __future__ import annotations

import io as _bytes_io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FixedLocator, NullLocator  # noqa: E402

from raypi import io  # noqa: E402

PANEL_WIDTH, PANEL_HEIGHT = 4.6, 3.4
TITLE_SIZE, LABEL_SIZE, TICK_SIZE = 11, 10, 9


@dataclass
class Figure:
    """A rendered figure: its file, caption, data table and what it lacks."""

    name: str
    """File stem (``sample_efficiency_auc``)."""
    title: str
    """Heading shown above the figure."""
    caption: str
    """What is plotted, how many seeds, which interval."""
    path: str | None = None
    """Written PNG (None when nothing could be plotted at all)."""
    table: pd.DataFrame | None = None
    """The plotted numbers (written beside the PNG as CSV)."""
    missing: list[str] = field(default_factory=list)
    """Readable notes on combinations without data."""


def panel_grid(
    count: int, ncols: int = 3, width: float = PANEL_WIDTH, height: float = PANEL_HEIGHT
):
    """Return ``(figure, axes)`` with ``count`` panels laid out ``ncols`` wide, extras hidden.

    ``width`` and ``height`` are a panel's share of the figure in inches, labels included;
    ``save`` lays the panels out with fixed margins (cheaper than a tight layout).
    """
    count = max(count, 1)
    ncols = min(ncols, count)
    nrows = math.ceil(count / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[count:]:
        ax.set_visible(False)
    for ax in flat:
        ax.tick_params(labelsize=TICK_SIZE)
    return fig, flat[:count]


def missing_panel(ax, title: str, message: str) -> None:
    """Draw a panel that says which data is missing instead of a plot."""
    ax.set_title(title, fontsize=TITLE_SIZE)
    ax.text(
        0.5,
        0.5,
        message,
        ha="center",
        va="center",
        wrap=True,
        fontsize=9,
        color="#555555",
        transform=ax.transAxes,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#cccccc")


def line_with_band(ax, summary: pd.DataFrame, x: str, label: str, color: str, **kwargs) -> None:
    """Plot ``summary.mean`` against ``x`` with a shaded ``[low, high]`` band."""
    data = summary.sort_values(x)
    ax.plot(data[x], data["mean"], marker="o", markersize=3.5, label=label, color=color, **kwargs)
    band = data.dropna(subset=["low", "high"])
    if not band.empty:
        ax.fill_between(band[x], band["low"], band["high"], color=color, alpha=0.15, linewidth=0)


def log_size_axis(ax, sizes: Sequence[float]) -> None:
    """Use a log x axis labelled at the training sizes themselves."""
    sizes = sorted({float(size) for size in sizes if size and size > 0})
    if not sizes:
        return
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(sizes))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels(
        [f"{int(size):,}" for size in sizes], rotation=45, ha="right", fontsize=TICK_SIZE
    )
    ax.set_xlim(sizes[0] / 1.25, sizes[-1] * 1.25)


def grouped_bars(
    ax,
    summary: pd.DataFrame,
    category: str,
    group: str,
    categories: Sequence[object],
    groups: Sequence[object],
    colors: dict[object, str],
    labels: dict[object, str],
) -> None:
    """Draw bars of ``mean`` per category, one bar per group, with ``[low, high]`` error bars."""
    width = 0.8 / max(len(groups), 1)
    for index, value in enumerate(groups):
        rows = summary[summary[group] == value].set_index(category).reindex(categories)
        xs = np.arange(len(categories)) + (index - (len(groups) - 1) / 2) * width
        means = rows["mean"].to_numpy(dtype=float)
        errors = np.vstack([means - rows["low"], rows["high"] - means]).astype(float)
        ax.bar(
            xs,
            means,
            width,
            color=colors[value],
            label=labels[value],
            edgecolor="white",
            linewidth=0.5,
        )
        ax.errorbar(
            xs,
            means,
            yerr=np.nan_to_num(errors),
            fmt="none",
            ecolor="#222222",
            elinewidth=0.8,
            capsize=2,
        )
    zoom_to(ax, summary)


def zoom_to(ax, summary: pd.DataFrame) -> None:
    """Set the y range to the plotted means and intervals with a margin (bars do not start at 0)."""
    values = pd.concat([summary["mean"], summary["low"], summary["high"]]).astype(float)
    values = values[np.isfinite(values)]
    if values.empty:
        return
    low, high = float(values.min()), float(values.max())
    margin = max((high - low) * 0.12, 0.01)
    ax.set_ylim(max(low - margin, 0.0) if low >= 0 else low - margin, high + margin)


def category_axis(ax, labels: Sequence[str]) -> None:
    """Label a categorical x axis, rotating long labels."""
    ax.set_xticks(range(len(labels)))
    rotate = sum(len(label) for label in labels) > 40
    ax.set_xticklabels(
        labels, rotation=30 if rotate else 0, ha="right" if rotate else "center", fontsize=TICK_SIZE
    )


def shared_legend(fig, axes, order: Sequence[str] | None = None, extra=()) -> None:
    """Put one legend for all panels above them (union of handles, first label wins).

    Args:
        fig: The figure.
        axes: Panels whose labelled artists go into the legend.
        order: Labels in the order they should appear (others follow, as first seen).
        extra: Further ``(handle, label)`` pairs, e.g. a proxy for a line style.
    """
    handles: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    handles |= {label: handle for handle, label in extra}
    if not handles:
        return
    rank = {label: i for i, label in enumerate(order or [])}
    labels = sorted(handles, key=lambda label: rank.get(label, len(rank)))
    # As many columns as fit the figure's width at ~0.08 in per character plus the marker.
    entry = max(len(label) for label in labels) * 0.08 + 0.7
    ncol = max(1, min(len(labels), int(fig.get_figwidth() // entry)))
    fig.legend(
        [handles[label] for label in labels],
        labels,
        loc="upper center",
        frameon=False,
        ncol=ncol,
        fontsize=LABEL_SIZE,
        markerscale=1.5,
    )


# Fixed margins in inches around each panel: y tick labels + y label on the left, title on
# top, (rotated) x tick labels + x label below.
LEFT, RIGHT, TOP, BOTTOM = 0.8, 0.15, 0.45, 0.85
CATEGORY_BOTTOM = 0.6


def _layout(fig, bottom: float, top: float, height: float) -> None:
    """Place the panels with fixed margins and room for the legend above them.

    Args:
        fig: The figure.
        bottom: Inches below each panel.
        top: Inches above each panel (its title).
        height: The figure's height without the legend, in inches.
    """
    nrows, ncols = fig.axes[0].get_subplotspec().get_gridspec().get_geometry()
    width = fig.get_figwidth()
    legend = 0.0
    if fig.legends:
        extent = fig.legends[0].get_window_extent(fig.canvas.get_renderer())
        legend = extent.height / fig.dpi + 0.05
    total = height + legend
    fig.set_size_inches(width, total)
    box_w = width / ncols - LEFT - RIGHT
    box_h = height / nrows - top - bottom
    fig.subplots_adjust(
        left=LEFT / width, right=1 - RIGHT / width, top=1 - (top + legend) / total,
        bottom=bottom / total, wspace=(LEFT + RIGHT) / box_w, hspace=(top + bottom) / box_h,
    )  # fmt: skip


def _overflow(fig) -> tuple[float, float]:
    """Return the inches the panels' labels need below and above each panel (titles, ticks)."""
    renderer = fig.canvas.get_renderer()
    below = above = 0.0
    for ax in (ax for ax in fig.axes if ax.get_visible()):
        box, drawn = ax.get_window_extent(renderer), ax.get_tightbbox(renderer)
        below = max(below, (box.y0 - drawn.y0) / fig.dpi)
        above = max(above, (drawn.y1 - box.y1) / fig.dpi)
    return below, above


def _fit(fig, bottom: float) -> None:
    """Lay the panels out, then grow the margins until no label reaches into another panel.

    Rotated tick labels and two-line titles are measured after a first layout: the gap between
    two rows of panels becomes what the upper row's x labels and the lower row's title need.
    """
    height = fig.get_figheight()
    _layout(fig, bottom, TOP, height)
    below, above = _overflow(fig)
    new_bottom, new_top = max(bottom, below + 0.1), max(TOP, above + 0.08)
    if (new_bottom, new_top) != (bottom, TOP):
        nrows = fig.axes[0].get_subplotspec().get_gridspec().get_geometry()[0]
        grown = height + nrows * (new_bottom - bottom + new_top - TOP)
        _layout(fig, new_bottom, new_top, grown)


def save(fig, path: str, bottom: float = BOTTOM, tight: bool = False) -> None:
    """Lay out ``fig`` leaving room for its legend on top, write it as PNG and close it.

    Args:
        fig: The figure from ``panel_grid``.
        path: Destination of the PNG (local or ``s3://``).
        bottom: Inches below each panel at least (more where its tick labels need it).
        tight: Instead of the panel layout, crop to the drawn content (figures without a
            legend on top whose labels decide their width).
    """
    if not tight:
        _fit(fig, bottom)
    buffer = _bytes_io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight" if tight else None)
    plt.close(fig)
    io.write_bytes(path, buffer.getvalue())


@dataclass(frozen=True)
class Layout:
    """How a figure's panels are laid out."""

    ncols: int = 3
    """Panels per row."""
    width: float = PANEL_WIDTH
    """Inches per panel, labels included."""
    height: float = PANEL_HEIGHT
    """Inches per panel, labels included."""
    bottom: float = BOTTOM
    """Inches below each panel (``CATEGORY_BOTTOM`` for category axes)."""


@dataclass(frozen=True)
class Empty:
    """What a figure without any panel says."""

    title: str
    """Title of the one placeholder panel."""
    message: str
    """Its text (may hold a line break)."""
    note: str
    """The note listed under the figure."""


def panel_figure(
    name: str,
    title: str,
    caption: str,
    panels: list,
    draw: Callable,
    out_dir: str,
    table: pd.DataFrame,
    *,
    empty: Empty,
    layout: Layout = Layout(),
    legend_order: Sequence[str] | None = None,
    legend_extra=(),
) -> Figure:
    """The skeleton every report figure shares: panel grid, placeholder, legend, PNG, record.

    Args:
        name: File stem and record name (e.g. ``distillation_auc``).
        title: Section title of the record.
        caption: Caption under the figure.
        panels: ``(key, rows)`` pairs, one panel each, in order.
        draw: ``draw(ax, key, rows) -> notes`` drawing one panel; returns notes on what lacks.
        out_dir: Folder of the PNG.
        table: Numbers written beside the figure.
        empty: What the figure says when there are no panels.
        layout: Panel layout.
        legend_order: Labels in legend order.
        legend_extra: Further ``(handle, label)`` legend entries (only with panels).

    Returns:
        The figure record.
    """
    fig, axes = panel_grid(len(panels), ncols=layout.ncols, width=layout.width,
                           height=layout.height)  # fmt: skip
    missing = [] if panels else [empty.note]
    if not panels:
        missing_panel(axes[0], empty.title, empty.message)
    for ax, (key, rows) in zip(axes, panels):
        missing += draw(ax, key, rows) or []
    shared_legend(fig, axes, order=legend_order, extra=legend_extra if panels else ())
    path = io.join(out_dir, f"{name}.png")
    save(fig, path, bottom=layout.bottom)
    return Figure(name, title, caption, path, table, missing)
