"""The study's findings as claims tested on sweep results: paired by seed, one size at a time.

Each claim compares two arms of one task at one training size — e.g. the distilled student
against the self-distilled one — over the seeds both have, by a one-sided paired t-test
(``stats.paired_test``). A directional claim ("A beats B") holds when the mean paired
difference points its way with p < ``ALPHA``; a "no better" claim holds when the test of "A
beats B" is *not* significant (a weaker statement, said so in the table). Claims are reported
as they come out of the results, holding or not; claims whose arms are absent are left out.

``DEMO_FINDINGS`` are the four findings the built-in demo is built to recover (see
``raypi.data.demo``), each with the study's figure or table it mirrors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from raypi.report import _columns as col
from raypi.report import _labels
from raypi.report.stats import paired_frame, paired_test

ALPHA = 0.05
"""Significance level of every claim (one-sided)."""
DIRECTIONS = ("greater", "less", "not_greater")


@dataclass(frozen=True)
class Arm:
    """Which trials of a task form one side of a comparison."""

    method: str
    encoder: str | None = None
    """Image encoder (None: any; text-only arms ignore it)."""
    text_encoder: str | None = None
    """Text encoder (None: any)."""

    def label(self) -> str:
        """Return e.g. ``Image-only (Demo ViT SSL)``."""
        name = _labels.method_title(self.method)
        which = self.encoder if self.method != "text" else self.text_encoder
        return f"{name} ({_labels.encoder_title(which)})" if which else name


@dataclass(frozen=True)
class Claim:
    """One testable statement: ``treatment`` vs ``baseline`` on ``task`` at some sizes."""

    finding: int
    """Number of the finding the claim belongs to (a finding holds when all its claims do)."""
    statement: str
    """The finding in words, as the study states it."""
    source: str
    """Where the study shows it (figure or table)."""
    task: str
    treatment: Arm
    baseline: Arm
    direction: str
    """``greater`` (treatment beats baseline), ``less``, or ``not_greater`` (no better)."""
    sizes: str = "each"
    """``each`` (one test per training size) or ``smallest``."""


_SSL, _CLIP, _BERT = "demo_vit_ssl", "demo_vit_clip", "demo_bert"
DEMO_FINDINGS = (
    Claim(
        1,
        "Diagnostic labels: the report-only model is far above the image-only model",
        "Table 7",
        "demo_diagnostic",
        Arm("text", text_encoder=_BERT),
        Arm("image", _SSL),
        "greater",
    ),
    Claim(
        2,
        "Distilling from the report teacher beats self-distillation on the prognostic task",
        "Fig. 3",
        "demo_prognostic",
        Arm("distill", _SSL, _BERT),
        Arm("self_distill", _SSL),
        "greater",
    ),
    Claim(
        2,
        "... and does not on the diagnostic task",
        "Fig. 3",
        "demo_diagnostic",
        Arm("distill", _SSL, _BERT),
        Arm("self_distill", _SSL),
        "not_greater",
    ),
    Claim(
        3,
        "Auxiliary task: the teacher is no better than the image-only model",
        "Fig. 9",
        "demo_auxiliary",
        Arm("teacher", _SSL, _BERT),
        Arm("image", _SSL),
        "not_greater",
    ),
    Claim(
        4,
        "Image-report aligned pre-training beats self-supervised on the diagnostic task at "
        "the small size",
        "Fig. 2a",
        "demo_diagnostic",
        Arm("image", _CLIP),
        Arm("image", _SSL),
        "greater",
        sizes="smallest",
    ),
    Claim(
        4,
        "... and loses to it on the auxiliary task",
        "Fig. 2b",
        "demo_auxiliary",
        Arm("image", _CLIP),
        Arm("image", _SSL),
        "less",
    ),
)

COLUMNS = [
    "Finding",
    "Claim",
    "Study",
    "Task",
    "Training images",
    "Comparison",
    "Treatment",
    "Baseline",
    "Mean difference [95% CI]",
    "Pairs",
    "p (one-sided)",
    "Holds",
]


def _rows_of(rows: pd.DataFrame, task: str, arm: Arm) -> pd.DataFrame:
    keep = (rows[col.TASK] == task) & (rows[col.METHOD] == arm.method)
    if arm.encoder is not None and arm.method != "text":
        keep &= rows[col.ENCODER] == arm.encoder
    if arm.text_encoder is not None:
        keep &= rows[col.TEXT_ENCODER] == arm.text_encoder
    return rows[keep]


def one_sided_p(t_stat: float, t_p: float, direction: str) -> float:
    """Return the one-sided p-value of a paired t-test from its two-sided result.

    ``greater`` and ``not_greater`` test "treatment > baseline"; ``less`` the reverse.
    """
    if not math.isfinite(t_p):
        return math.nan
    toward = t_stat > 0 if direction != "less" else t_stat < 0
    return t_p / 2 if toward else 1 - t_p / 2


def _holds(direction: str, mean: float, p: float) -> bool | None:
    if not math.isfinite(p):
        return None
    if direction == "greater":
        return mean > 0 and p < ALPHA
    if direction == "less":
        return mean < 0 and p < ALPHA
    return p >= ALPHA


def check_claims(rows: pd.DataFrame, claims=DEMO_FINDINGS) -> pd.DataFrame:
    """Test each claim on reported values, one paired test per training size.

    Args:
        rows: Finished trials with a ``value`` column (``_select.with_value``), of one setting.
        claims: The claims (``DEMO_FINDINGS`` by default).

    Returns:
        One row per (claim, size) whose two arms share at least two seeds; columns
        ``COLUMNS`` plus ``mean_diff``, ``p_value``, ``holds`` (bool or None) and ``n``.
    """
    out = []
    for claim in claims:
        treated = _rows_of(rows, claim.task, claim.treatment).assign(arm="treatment")
        base = _rows_of(rows, claim.task, claim.baseline).assign(arm="baseline")
        both = pd.concat([treated, base], ignore_index=True)
        pairs = paired_frame(both, [col.SIZE], col.SEED, "arm", "treatment", "baseline")
        sizes = sorted(pairs[col.SIZE].unique())
        if claim.sizes == "smallest":
            sizes = sizes[:1]
        for size in sizes:
            at = pairs[pairs[col.SIZE] == size]
            if len(at) < 2:
                continue
            test = paired_test(at["treatment"], at["baseline"])
            p = one_sided_p(test.t_stat, test.t_pvalue, claim.direction)
            holds = _holds(claim.direction, test.mean_diff, p)
            out.append(_row(claim, int(size), at, test, p, holds))
    frame = pd.DataFrame(out)
    return frame if not frame.empty else pd.DataFrame(columns=COLUMNS)


_SAYS = {"greater": ">", "less": "<", "not_greater": "not >"}


def _row(claim: Claim, size: int, pairs: pd.DataFrame, test, p: float, holds) -> dict:
    verdict = {True: "holds", False: "does not hold", None: "undefined"}[holds]
    return {
        "Finding": claim.finding,
        "Claim": claim.statement,
        "Study": claim.source,
        "Task": _labels.task_title(claim.task),
        "Training images": size,
        "Comparison": f"{claim.treatment.label()} {_SAYS[claim.direction]} "
        f"{claim.baseline.label()}",
        "Treatment": f"{100 * pairs['treatment'].mean():.1f}",
        "Baseline": f"{100 * pairs['baseline'].mean():.1f}",
        "Mean difference [95% CI]": f"{100 * test.mean_diff:+.1f} "
        f"[{100 * test.low:+.1f}, {100 * test.high:+.1f}]",
        "Pairs": int(test.n),
        "p (one-sided)": f"{p:.3g}" if math.isfinite(p) else "—",
        "Holds": verdict,
        "mean_diff": test.mean_diff,
        "low": test.low,
        "high": test.high,
        "p_value": p,
        "holds": holds,
        "n": int(test.n),
        "diffs": [float(v) for v in pairs["treatment"] - pairs["baseline"]],
    }


def summary_lines(tested: pd.DataFrame) -> list[str]:
    """Return one line per finding: whether all its claims hold, with each claim's p-value."""
    lines = []
    for finding, group in tested.groupby("Finding", sort=True):
        verdict = "holds" if group["holds"].eq(True).all() else "does NOT hold"
        parts = "; ".join(
            f"{row['Task']} n={row['Training images']}: {row['Comparison']} "
            f"{row['Mean difference [95% CI]']} pts, p={row['p (one-sided)']}"
            for _, row in group.iterrows()
        )
        lines.append(f"Finding {finding} {verdict}: {parts}")
    return lines


def findings_figure(tested: pd.DataFrame, path: str):
    """Draw each tested claim as its paired differences (seeds) with the mean and 95 % CI.

    Args:
        tested: Output of ``check_claims`` (non-empty).
        path: Destination PNG (local or ``s3://``).

    Returns:
        The ``raypi.report._plot.Figure`` (its table is ``tested`` without helper columns).
    """
    import matplotlib.pyplot as plt

    from raypi.report import _plot

    height = 0.55 * len(tested) + 1.2
    fig, ax = plt.subplots(figsize=(10.5, height))
    labels = []
    for y, (_, row) in enumerate(tested.iloc[::-1].iterrows()):
        color = {True: "#2ca02c", False: "#d62728"}.get(row["holds"], "#7f7f7f")
        diffs = [100 * d for d in row["diffs"]]
        ax.scatter(diffs, [y] * len(diffs), s=14, color=color, alpha=0.55, zorder=3)
        mean, low, high = (100 * row[key] for key in ("mean_diff", "low", "high"))
        ax.errorbar(
            mean,
            y,
            xerr=[[mean - low], [high - mean]],
            fmt="D",
            color=color,
            capsize=3,
            zorder=4,
        )
        labels.append(
            f"{row['Finding']}. {row['Task']}, n={row['Training images']}: {row['Comparison']}"
            f"  (p={row['p (one-sided)']}, {row['Holds']})"
        )
    ax.axvline(0, color="#444", linewidth=0.8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("paired difference, treatment − baseline (AUC points; dots: seeds)")
    ax.grid(axis="x", alpha=0.3)
    _plot.save(fig, path, tight=True)  # the long claim labels set the figure's width
    table = tested[COLUMNS]
    caption = (
        "The study's findings tested on these results: per claim and training size, the "
        "paired difference of the two arms per seed (dots), their mean with a 95% t "
        "interval (diamond); green holds, red does not (one-sided paired t-test, "
        f"α = {ALPHA})."
    )
    name = path.rsplit("/", 1)[-1].removesuffix(".png")
    return _plot.Figure(name, "Findings", caption, path, table)
