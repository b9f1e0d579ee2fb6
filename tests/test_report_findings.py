"""Three-way verdicts of the findings on constructed paired data: holds, does not hold,
inconclusive — for claims of a gain (one-sided paired t) and of no gain (paired TOST)."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from raypi.report.findings import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    Arm,
    Claim,
    check_claims,
    finding_verdict,
    summary_lines,
    verdict,
)
from raypi.report.stats import equivalence_test, one_sided

BASE = np.array([0.70, 0.72, 0.68, 0.71, 0.69, 0.73, 0.70, 0.71])


def _with(diffs) -> tuple[np.ndarray, np.ndarray]:
    diffs = np.asarray(diffs, dtype=float)
    return BASE[: len(diffs)] + diffs, BASE[: len(diffs)]


def test_tost_matches_the_90_percent_interval_inside_the_margin():
    a, b = _with([0.002, -0.001, 0.003, 0.000, 0.001, -0.002, 0.001, 0.002])
    tost = equivalence_test(a, b, margin=0.01)
    diff = a - b
    half = sps.t.ppf(0.95, len(diff) - 1) * diff.std(ddof=1) / math.sqrt(len(diff))
    inside = -0.01 < diff.mean() - half and diff.mean() + half < 0.01
    assert inside and tost.p_value < 0.05
    # By hand: the upper test is t = (mean − margin) / se against t(n−1), lower tail.
    t_upper = (diff.mean() - 0.01) / (diff.std(ddof=1) / math.sqrt(len(diff)))
    assert tost.p_upper == pytest.approx(sps.t.cdf(t_upper, len(diff) - 1))


def test_one_sided_p_matches_scipy():
    a, b = _with([0.01, 0.03, 0.02, -0.01, 0.02])
    expected = sps.ttest_rel(a, b, alternative="greater").pvalue
    assert one_sided(a, b).p_above == pytest.approx(expected)
    assert one_sided(a, b).p_below == pytest.approx(1 - expected)


@pytest.mark.parametrize(
    ("direction", "diffs", "expected"),
    [
        # A clear gain of ~5 points on every seed.
        ("greater", [0.05, 0.06, 0.04, 0.05, 0.055], HOLDS),
        # Tight around zero: a gain of a point or more is ruled out.
        ("greater", [0.001, -0.002, 0.000, 0.002, -0.001], FAILS),
        # Wide spread around a small mean: neither shown (the CI [−11.0, +4.5]).
        ("greater", [0.06, -0.15, 0.02, -0.08, 0.04], INCONCLUSIVE),
        # No gain: tight around zero — equivalence within ±1 point shown.
        ("no_gain", [0.001, -0.002, 0.000, 0.002, -0.001, 0.001, 0.0, -0.001], HOLDS),
        # A gain of ~5 points: the difference lies beyond the margin.
        ("no_gain", [0.05, 0.06, 0.04, 0.05, 0.055], FAILS),
        # A loss of ~5 points is not "as well as" either.
        ("no_gain", [-0.05, -0.06, -0.04, -0.05, -0.055], FAILS),
        # Not significant, yet not shown equivalent: absence of evidence stays inconclusive.
        ("no_gain", [0.06, -0.15, 0.02, -0.08, 0.04], INCONCLUSIVE),
        ("less", [-0.05, -0.06, -0.04, -0.05, -0.055], HOLDS),
        ("less", [0.05, 0.06, 0.04, 0.05, 0.055], FAILS),
    ],
)
def test_verdicts_on_constructed_pairs(direction, diffs, expected):
    a, b = _with(diffs)
    assert verdict(direction, a, b).verdict == expected


def test_no_gain_is_never_read_from_non_significance():
    a, b = _with([0.06, -0.15, 0.02, -0.08, 0.04])
    greater = one_sided(a, b).p_above
    assert greater > 0.05  # the old rule would have said "holds"
    assert verdict("no_gain", a, b).verdict == INCONCLUSIVE


def test_the_margin_is_an_option():
    a, b = _with([0.004, -0.006, 0.006, -0.004, 0.005, -0.005])
    assert verdict("no_gain", a, b, margin=0.002).verdict != HOLDS
    assert verdict("no_gain", a, b, margin=0.03).verdict == HOLDS
    with pytest.raises(ValueError, match="margin"):
        equivalence_test(a, b, margin=0)


def test_too_few_pairs_or_unknown_direction():
    assert verdict("greater", [0.7], [0.6]).verdict == INCONCLUSIVE
    with pytest.raises(ValueError, match="direction"):
        verdict("not_greater", [0.7, 0.8], [0.6, 0.7])


def test_finding_verdict_combines_claims():
    assert finding_verdict([HOLDS, HOLDS]) == HOLDS
    assert finding_verdict([HOLDS, INCONCLUSIVE]) == INCONCLUSIVE
    assert finding_verdict([INCONCLUSIVE, FAILS]) == FAILS


def test_check_claims_reports_each_verdict_and_the_margin():
    rows = []
    for seed, (gain, same) in enumerate(zip([0.05, 0.06, 0.04, 0.05, 0.055],
                                            [0.001, -0.002, 0.0, 0.002, -0.001])):  # fmt: skip
        for task, diff in (("t_gain", gain), ("t_same", same)):
            for method, value in (("distill", BASE[seed] + diff), ("self_distill", BASE[seed])):
                rows.append(dict(task=task, method=method, encoder="e", text_encoder="x",
                                 size=100, seed=seed, value=value))  # fmt: skip
    claims = [
        Claim(
            2, "gain", "Fig. 3", "t_gain", Arm("distill", "e"), Arm("self_distill", "e"), "greater"
        ),  # fmt: skip
        Claim(
            2, "same", "Fig. 3", "t_same", Arm("distill", "e"), Arm("self_distill", "e"), "no_gain"
        ),  # fmt: skip
    ]
    tested = check_claims(pd.DataFrame(rows), claims, margin=0.01)
    assert list(tested["Verdict"]) == [HOLDS, HOLDS]
    assert "TOST, margin ±1 AUC point" in tested["Test"].iloc[1]
    (line,) = summary_lines(tested)
    assert line.startswith("Finding 2 HOLDS")
    tight = check_claims(pd.DataFrame(rows), claims, margin=0.0005)
    assert tight["Verdict"].iloc[1] != HOLDS
