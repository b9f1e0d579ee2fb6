import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from raypi.report.stats import mean_ci, paired_frame, paired_test, summarize

AUCS = [0.71, 0.74, 0.69, 0.75, 0.72]


def _hand_interval(values, level):
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = sps.t.ppf(1 - (1 - level) / 2, n - 1) * std / math.sqrt(n)
    return mean, mean - half, mean + half, std


@pytest.mark.parametrize("level", [0.90, 0.95])
def test_t_interval_matches_hand_computation(level):
    mean, low, high, std = _hand_interval(AUCS, level)
    interval = mean_ci(AUCS, level=level)
    assert interval.n == 5
    assert interval.mean == pytest.approx(mean, abs=1e-12)
    assert interval.std == pytest.approx(std, abs=1e-12)
    assert interval.low == pytest.approx(low, abs=1e-12)
    assert interval.high == pytest.approx(high, abs=1e-12)


def test_t_interval_known_numbers():
    # mean 0.722, s = 0.0238747, t(0.95, 4) = 2.131847 -> half width 0.0227620
    interval = mean_ci(AUCS, level=0.90)
    assert interval.low == pytest.approx(0.722 - 0.022762, abs=1e-6)
    assert interval.high == pytest.approx(0.722 + 0.022762, abs=1e-6)
    assert mean_ci(AUCS, 0.95).high - mean_ci(AUCS, 0.95).low > interval.high - interval.low


def test_interval_drops_missing_values_and_degenerates_cleanly():
    assert mean_ci([0.7, None, float("nan"), 0.8]).n == 2
    one = mean_ci([0.7])
    assert one.mean == 0.7 and math.isnan(one.low) and math.isnan(one.high)
    none = mean_ci([])
    assert none.n == 0 and math.isnan(none.mean)


def test_bootstrap_interval_is_seeded_and_inside_the_data_range():
    first = mean_ci(AUCS, level=0.90, method="bootstrap", seed=3)
    again = mean_ci(AUCS, level=0.90, method="bootstrap", seed=3)
    assert (first.low, first.high) == (again.low, again.high)
    assert min(AUCS) <= first.low < first.mean < first.high <= max(AUCS)
    wide = mean_ci(AUCS, level=0.99, method="bootstrap", seed=3)
    assert wide.high - wide.low > first.high - first.low


def test_bad_level_or_method_is_refused():
    with pytest.raises(ValueError, match="level"):
        mean_ci(AUCS, level=90)
    with pytest.raises(ValueError, match="bootstrap"):
        mean_ci(AUCS, method="jackknife")


def test_paired_test_matches_hand_computation():
    distilled = np.array([0.74, 0.77, 0.70, 0.79, 0.75])
    image = np.array([0.71, 0.74, 0.69, 0.75, 0.72])
    diff = distilled - image
    n = len(diff)
    t_hand = diff.mean() / (diff.std(ddof=1) / math.sqrt(n))
    test = paired_test(distilled, image)
    assert test.n == 5
    assert test.mean_diff == pytest.approx(0.028)
    assert test.t_stat == pytest.approx(t_hand)
    assert test.t_pvalue == pytest.approx(2 * sps.t.sf(abs(t_hand), n - 1))
    # All five differences positive: exact two-sided Wilcoxon p = 2 / 2**5.
    assert test.wilcoxon_pvalue == pytest.approx(2 / 32)
    assert test.low < test.mean_diff < test.high


def test_paired_test_undefined_cases():
    same = paired_test([0.7, 0.8, 0.9], [0.7, 0.8, 0.9])
    assert same.mean_diff == 0 and math.isnan(same.t_pvalue) and math.isnan(same.wilcoxon_pvalue)
    assert paired_test([0.7], [0.6]).n == 1
    with pytest.raises(ValueError, match="length"):
        paired_test([0.7, 0.8], [0.6])


def test_paired_frame_matches_seeds_and_drops_unpaired():
    frame = pd.DataFrame(
        {
            "encoder": ["a"] * 5,
            "seed": [0, 1, 2, 0, 1],
            "method": ["distill", "distill", "distill", "image", "image"],
            "value": [0.8, 0.7, 0.9, 0.75, 0.72],
        }
    )
    pairs = paired_frame(frame, ["encoder"], "seed", "method", "distill", "image")
    assert list(pairs["seed"]) == [0, 1]
    assert list(pairs["diff"].round(4)) == [0.05, -0.02]
    empty = paired_frame(frame, ["encoder"], "seed", "method", "teacher", "image")
    assert empty.empty and "diff" in empty


def test_summarize_groups():
    frame = pd.DataFrame({"encoder": ["a", "a", "b"], "value": [0.7, 0.8, 0.9]})
    summary = summarize(frame, ["encoder"], level=0.90)
    assert list(summary["n"]) == [2, 1]
    assert summary["mean"].tolist() == pytest.approx([0.75, 0.9])
    assert math.isnan(summary["low"].iloc[1])
    assert summarize(frame.iloc[:0], ["encoder"]).empty
