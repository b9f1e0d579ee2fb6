"""Statistics of the report: means with confidence intervals over seeds, and paired tests."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

CURVE_LEVEL = 0.90
"""Confidence level of curves (sample efficiency, λ search), as in the study's Fig. 2."""

BAR_LEVEL = 0.95
"""Confidence level of bars (distillation, ablations), as in the study's Fig. 3."""

CI_METHODS = ("t", "bootstrap")


@dataclass(frozen=True)
class Interval:
    """A mean with a two-sided confidence interval."""

    mean: float
    """Sample mean (nan without values)."""
    low: float
    """Lower end of the interval (nan with fewer than two values)."""
    high: float
    """Upper end of the interval (nan with fewer than two values)."""
    n: int
    """Number of finite values the interval is computed from."""
    std: float
    """Sample standard deviation (ddof=1; nan with fewer than two values)."""


def _finite(values: Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
    array = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
    return array[np.isfinite(array)]


def mean_ci(
    values: Sequence[float] | np.ndarray | pd.Series,
    level: float = BAR_LEVEL,
    method: str = "t",
    n_boot: int = 2000,
    seed: int = 0,
) -> Interval:
    """Return the mean of ``values`` with a confidence interval.

    The t-interval is ``mean ± t_{(1+level)/2, n-1} · s / sqrt(n)`` with ``s`` the sample
    standard deviation; the bootstrap interval is the percentile interval of ``n_boot``
    resampled means. Non-finite values are dropped.

    Args:
        values: One number per seed.
        level: Confidence level in (0, 1), e.g. 0.90 for curves and 0.95 for bars.
        method: ``"t"`` (Student t) or ``"bootstrap"`` (percentile bootstrap).
        n_boot: Bootstrap resamples.
        seed: Seed of the bootstrap resampling.

    Returns:
        The interval; its ends are nan with fewer than two values.
    """
    if not 0 < level < 1:
        raise ValueError(f"confidence level must lie in (0, 1); got {level}")
    if method not in CI_METHODS:
        raise ValueError(f"unknown CI method {method!r}; known: {', '.join(CI_METHODS)}")
    data = _finite(values)
    n = len(data)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, math.nan)
    mean = float(data.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan, 1, math.nan)
    std = float(data.std(ddof=1))
    if method == "t":
        half = float(sps.t.ppf((1 + level) / 2, n - 1)) * std / math.sqrt(n)
        return Interval(mean, mean - half, mean + half, n, std)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Interval(mean, float(low), float(high), n, std)


def summarize(
    frame: pd.DataFrame,
    by: list[str],
    value: str = "value",
    level: float = BAR_LEVEL,
    method: str = "t",
) -> pd.DataFrame:
    """Return one row per group of ``by`` with mean, CI ends, n and std of ``value``.

    Args:
        frame: One row per trial.
        by: Grouping columns (e.g. task, size, encoder).
        value: Column to summarise.
        level: Confidence level.
        method: ``"t"`` or ``"bootstrap"``.

    Returns:
        Columns ``by + [mean, low, high, n, std]``, sorted by ``by``.
    """
    columns = [*by, "mean", "low", "high", "n", "std"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for key, group in frame.groupby(by, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        interval = mean_ci(group[value], level=level, method=method)
        rows.append((*key, interval.mean, interval.low, interval.high, interval.n, interval.std))
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class PairedTest:
    """A paired comparison ``a − b`` over matched seeds."""

    n: int
    """Number of matched pairs."""
    mean_diff: float
    """Mean of the per-pair differences."""
    low: float
    """Lower end of the t confidence interval of the mean difference."""
    high: float
    """Upper end of the t confidence interval of the mean difference."""
    t_stat: float
    """Paired t statistic (nan when undefined)."""
    t_pvalue: float
    """Two-sided p-value of the paired t-test."""
    wilcoxon_stat: float
    """Wilcoxon signed-rank statistic (nan when undefined)."""
    wilcoxon_pvalue: float
    """Two-sided p-value of the Wilcoxon signed-rank test."""


def paired_test(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, level: float = BAR_LEVEL
) -> PairedTest:
    """Compare matched samples ``a`` and ``b`` (same seeds) by a paired t- and Wilcoxon test.

    Args:
        a: Values of the treatment, one per seed (e.g. distilled).
        b: Values of the baseline for the same seeds (e.g. image-only).
        level: Confidence level of the interval of the mean difference.

    Returns:
        The test; statistics are nan where undefined (fewer than two pairs, or no non-zero
        difference for Wilcoxon).
    """
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"paired samples differ in length: {a_arr.shape} vs {b_arr.shape}")
    keep = np.isfinite(a_arr) & np.isfinite(b_arr)
    diff = a_arr[keep] - b_arr[keep]
    interval = mean_ci(diff, level=level)
    nan = math.nan
    t_stat = t_p = w_stat = w_p = nan
    if len(diff) >= 2 and np.ptp(diff) > 0:
        t_stat, t_p = (float(x) for x in sps.ttest_rel(a_arr[keep], b_arr[keep]))
    if len(diff) >= 2 and np.any(diff != 0):
        result = sps.wilcoxon(diff)
        w_stat, w_p = float(result.statistic), float(result.pvalue)
    return PairedTest(
        len(diff), interval.mean, interval.low, interval.high, t_stat, t_p, w_stat, w_p
    )


def paired_frame(
    frame: pd.DataFrame,
    group: list[str],
    pair_on: str,
    column: str,
    treatment: str,
    baseline: str,
    value: str = "value",
) -> pd.DataFrame:
    """Return per-pair values of ``treatment`` and ``baseline`` matched on ``group + [pair_on]``.

    Args:
        frame: One row per trial.
        group: Columns that define a comparison (e.g. task, size, encoder).
        pair_on: Column that matches pairs (the seed).
        column: Column that names the arm (e.g. method).
        treatment: Arm value of the treatment (e.g. ``"distill"``).
        baseline: Arm value of the baseline (e.g. ``"image"``).
        value: Metric column.

    Returns:
        Columns ``group + [pair_on, "treatment", "baseline", "diff"]``; pairs where either arm
        is missing are left out. Several trials of one arm and seed are averaged.
    """
    keys = [*group, pair_on]
    arms = frame[frame[column].isin([treatment, baseline])]
    wide = arms.pivot_table(index=keys, columns=column, values=value, aggfunc="mean")
    if treatment not in wide or baseline not in wide:
        return pd.DataFrame(columns=[*keys, "treatment", "baseline", "diff"])
    wide = wide[[treatment, baseline]].dropna().reset_index()
    wide = wide.rename(columns={treatment: "treatment", baseline: "baseline"})
    wide["diff"] = wide["treatment"] - wide["baseline"]
    wide.columns.name = None
    return wide[[*keys, "treatment", "baseline", "diff"]]


DEFAULT_MARGIN = 0.01
"""Equivalence margin of a "no gain" claim: 1 AUC point (the ``--equivalence-margin`` option)."""


@dataclass(frozen=True)
class OneSided:
    """One-sided paired t-tests of a mean difference ``a − b`` against shifted nulls."""

    n: int
    """Number of matched pairs."""
    mean_diff: float
    """Mean of the per-pair differences."""
    p_above: float
    """p of ``H0: Δ ≤ shift`` against ``Δ > shift`` (shift given to ``one_sided``)."""
    p_below: float
    """p of ``H0: Δ ≥ shift`` against ``Δ < shift``."""


def one_sided(a, b, shift: float = 0.0) -> OneSided:
    """Return one-sided paired t-test p-values of ``mean(a − b)`` against ``shift``.

    Args:
        a: Treatment values, one per seed.
        b: Baseline values for the same seeds.
        shift: The null's boundary (0 for "greater"/"less"; ±margin for equivalence).

    Returns:
        The p-values; nan with fewer than two pairs or when every difference is equal.
    """
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"paired samples differ in length: {a_arr.shape} vs {b_arr.shape}")
    keep = np.isfinite(a_arr) & np.isfinite(b_arr)
    diff = a_arr[keep] - b_arr[keep]
    n = len(diff)
    if n < 2 or np.ptp(diff) == 0:
        return OneSided(n, float(diff.mean()) if n else math.nan, math.nan, math.nan)
    t = (diff.mean() - shift) / (diff.std(ddof=1) / math.sqrt(n))
    return OneSided(n, float(diff.mean()), float(sps.t.sf(t, n - 1)), float(sps.t.cdf(t, n - 1)))


@dataclass(frozen=True)
class Equivalence:
    """A paired two one-sided tests (TOST) result: is ``|Δ| < margin`` shown?"""

    n: int
    """Number of matched pairs."""
    mean_diff: float
    """Mean of the per-pair differences."""
    margin: float
    """Equivalence margin (in the metric's units; 0.01 = 1 AUC point)."""
    p_lower: float
    """p of ``H0: Δ ≤ −margin``."""
    p_upper: float
    """p of ``H0: Δ ≥ +margin``."""

    @property
    def p_value(self) -> float:
        """TOST p-value: the larger of the two one-sided p-values."""
        return max(self.p_lower, self.p_upper)


def equivalence_test(a, b, margin: float = DEFAULT_MARGIN) -> Equivalence:
    """Paired TOST of ``a`` and ``b``: equivalence is shown when ``p_value < α``.

    Equivalent to the ``1 − 2α`` t-interval of the mean difference lying inside
    ``(−margin, +margin)``.

    Args:
        a: Treatment values, one per seed.
        b: Baseline values for the same seeds.
        margin: Equivalence margin (> 0).

    Returns:
        The test; p-values are nan where the t statistic is undefined.
    """
    if not margin > 0:
        raise ValueError(f"equivalence margin must be > 0, got {margin}")
    low, high = one_sided(a, b, -margin), one_sided(a, b, margin)
    return Equivalence(low.n, low.mean_diff, margin, low.p_above, high.p_below)
