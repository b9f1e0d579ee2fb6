"""The study's findings as claims tested on sweep results: paired by seed, one size at a time.

Each claim compares two arms of one task at one training size — e.g. the distilled student
against the self-distilled one — over the seeds both have, and gets one of three verdicts:

- a directional claim ("A beats B", ``greater``; or ``less``) *holds* when a one-sided paired
  t-test shows the difference its way (p < ``ALPHA``); it *does not hold* when the data rule
  out a difference of the margin or more its way (one-sided test of ``Δ < +margin``, or
  ``Δ > −margin`` for ``less``); otherwise it is *inconclusive*;
- a "no gain" claim ("A does as well as B, no better", ``no_gain``) *holds* only on a paired
  equivalence test (TOST: ``|Δ| < margin`` shown at ``ALPHA``); it *does not hold* when a
  difference beyond the margin is shown (either way: the claim is that the two arms are
  alike); otherwise it is *inconclusive*. Absence of a significant gain is never read as
  evidence of no gain.

The margin is ``stats.DEFAULT_MARGIN`` (1 AUC point) unless the report is given another
(``raypi report --equivalence-margin``). Claims are reported as they come out of the results;
claims whose arms are absent are left out.

``DEMO_FINDINGS`` are the four findings the built-in demo is built to recover (see
``raypi.data.demo``), each with the study's figure or table it mirrors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from raypi.report import _columns as col
from raypi.report import _labels
from raypi.report.stats import (
    DEFAULT_MARGIN,
    equivalence_test,
    one_sided,
    paired_frame,
    paired_test,
)

ALPHA = 0.05
"""Significance level of every claim (one-sided)."""
DIRECTIONS = ("greater", "less", "no_gain")
HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE)


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
    """``greater`` (treatment beats baseline), ``less``, or ``no_gain`` (does as well, no
    better: an equivalence claim)."""
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
        "no_gain",
    ),
    Claim(
        3,
        "Auxiliary task: the teacher is no better than the image-only model",
        "Fig. 9",
        "demo_auxiliary",
        Arm("teacher", _SSL, _BERT),
        Arm("image", _SSL),
        "no_gain",
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
    "Test",
    "p (claim)",
    "p (against)",
    "Verdict",
]


def _rows_of(rows: pd.DataFrame, task: str, arm: Arm) -> pd.DataFrame:
    keep = (rows[col.TASK] == task) & (rows[col.METHOD] == arm.method)
    if arm.encoder is not None and arm.method != "text":
        keep &= rows[col.ENCODER] == arm.encoder
    if arm.text_encoder is not None:
        keep &= rows[col.TEXT_ENCODER] == arm.text_encoder
    return rows[keep]


@dataclass(frozen=True)
class Verdict:
    """The outcome of one claim at one size: the verdict and the two tests behind it."""

    verdict: str
    """One of ``VERDICTS``."""
    test: str
    """The test that can make the claim hold, in words."""
    p_claim: float
    """p of that test (holds when < ``ALPHA``)."""
    p_against: float
    """p of the test that refutes the claim (does not hold when < ``ALPHA``)."""


def verdict(direction: str, a, b, margin: float = DEFAULT_MARGIN) -> Verdict:
    """Return the three-way verdict of a claim on paired values ``a`` (treatment), ``b``.

    Args:
        direction: One of ``DIRECTIONS``.
        a: Treatment values, one per seed.
        b: Baseline values of the same seeds.
        margin: Equivalence margin in the metric's units (0.01 = 1 AUC point).

    Returns:
        The verdict; ``inconclusive`` too where a test is undefined (fewer than two pairs or
        identical differences).
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown claim direction {direction!r}; known: {DIRECTIONS}")
    points = f"{100 * margin:g} AUC point{'s' if margin != 0.01 else ''}"
    if direction == "no_gain":
        tost = equivalence_test(a, b, margin)
        beyond = min(one_sided(a, b, margin).p_above, one_sided(a, b, -margin).p_below)
        claim, against = tost.p_value, beyond
        test = f"paired TOST, margin ±{points}"
    elif direction == "greater":
        claim, against = one_sided(a, b).p_above, one_sided(a, b, margin).p_below
        test = f"one-sided paired t; against: gain < {points}"
    else:
        claim, against = one_sided(a, b).p_below, one_sided(a, b, -margin).p_above
        test = f"one-sided paired t; against: loss < {points}"
    if math.isfinite(claim) and claim < ALPHA:
        outcome = HOLDS
    elif math.isfinite(against) and against < ALPHA:
        outcome = FAILS
    else:
        outcome = INCONCLUSIVE
    return Verdict(outcome, test, claim, against)


def check_claims(
    rows: pd.DataFrame, claims=DEMO_FINDINGS, margin: float = DEFAULT_MARGIN
) -> pd.DataFrame:
    """Test each claim on reported values, one paired test per training size.

    Args:
        rows: Finished trials with a ``value`` column (``_select.with_value``), of one setting.
        claims: The claims (``DEMO_FINDINGS`` by default).
        margin: Equivalence margin (AUC units) of ``no_gain`` claims and of refutations.

    Returns:
        One row per (claim, size) whose two arms share at least two seeds; columns
        ``COLUMNS`` plus ``mean_diff``, ``low``, ``high``, ``p_value``, ``verdict``, ``n``
        and ``diffs``.
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
            judged = verdict(claim.direction, at["treatment"], at["baseline"], margin)
            out.append(_row(claim, int(size), at, test, judged))
    frame = pd.DataFrame(out)
    return frame if not frame.empty else pd.DataFrame(columns=COLUMNS)


_SAYS = {"greater": ">", "less": "<", "no_gain": "≈"}


def _p(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else "—"


def _row(claim: Claim, size: int, pairs: pd.DataFrame, test, judged: Verdict) -> dict:
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
        "Test": judged.test,
        "p (claim)": _p(judged.p_claim),
        "p (against)": _p(judged.p_against),
        "Verdict": judged.verdict,
        "mean_diff": test.mean_diff,
        "low": test.low,
        "high": test.high,
        "p_value": judged.p_claim,
        "verdict": judged.verdict,
        "n": int(test.n),
        "diffs": [float(v) for v in pairs["treatment"] - pairs["baseline"]],
    }


def finding_verdict(verdicts) -> str:
    """Return a finding's verdict from its claims' (all hold, any does not, else inconclusive)."""
    verdicts = list(verdicts)
    if verdicts and all(v == HOLDS for v in verdicts):
        return HOLDS
    return FAILS if FAILS in verdicts else INCONCLUSIVE


def summary_lines(tested: pd.DataFrame) -> list[str]:
    """Return one line per finding: its verdict, then each claim's difference, test and p."""
    lines = []
    for finding, group in tested.groupby("Finding", sort=True):
        outcome = finding_verdict(group["verdict"])
        parts = "; ".join(
            f"{row['Task']} n={row['Training images']}: {row['Comparison']} "
            f"{row['Mean difference [95% CI]']} pts, {row['Verdict']} "
            f"({row['Test']}: p={row['p (claim)']}, against p={row['p (against)']})"
            for _, row in group.iterrows()
        )
        lines.append(f"Finding {finding} {outcome.upper()}: {parts}")
    return lines
