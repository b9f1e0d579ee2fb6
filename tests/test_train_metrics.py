import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.preprocessing import label_binarize

from raypi.train import metrics


@pytest.mark.parametrize("ties", [False, True])
def test_binary_metrics_equal_sklearn(ties):
    rng = np.random.default_rng(0)
    for _ in range(5):
        y = rng.integers(0, 2, 300)
        p1 = rng.random(300)
        if ties:
            p1 = np.round(p1, 1)
        probs = np.stack([1 - p1, p1], 1)
        assert metrics.auc(y, probs) == pytest.approx(roc_auc_score(y, p1), abs=1e-12)
        assert metrics.auprc(y, probs) == pytest.approx(average_precision_score(y, p1), abs=1e-12)
        assert metrics.auc(y, torch.tensor(p1)) == pytest.approx(roc_auc_score(y, p1), abs=1e-12)


@pytest.mark.parametrize("ties", [False, True])
def test_five_class_metrics_equal_sklearn_micro_one_vs_rest(ties):
    rng = np.random.default_rng(1)
    for _ in range(5):
        y = rng.integers(0, 5, 200)
        probs = rng.dirichlet(np.ones(5), 200)
        if ties:
            probs = np.round(probs, 1)
        onehot = label_binarize(y, classes=range(5))
        want_auc = roc_auc_score(onehot, probs, average="micro")
        want_ap = average_precision_score(onehot, probs, average="micro")
        assert metrics.auc(y, probs) == pytest.approx(want_auc, abs=1e-12)
        assert metrics.auprc(torch.tensor(y), torch.tensor(probs)) == pytest.approx(
            want_ap, abs=1e-12
        )


def test_one_class_gives_nan_and_a_warning_naming_the_context():
    y = np.ones(10, dtype=int)
    probs = np.random.default_rng(2).random((10, 2))
    with pytest.warns(RuntimeWarning, match="age/seed=3"):
        assert np.isnan(metrics.auc(y, probs, context="age/seed=3"))
    with pytest.warns(RuntimeWarning, match="age/seed=3"):
        assert np.isnan(metrics.auprc(y, probs, context="age/seed=3"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(metrics.auc(y, probs, warn=False))


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="probs must be"):
        metrics.auc([0, 1, 1], np.zeros((4, 3)))
