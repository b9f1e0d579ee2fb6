import math

import numpy as np
import pytest
import torch

from raypi.methods import DEFAULT_LAMBDA
from raypi.train import objectives
from raypi.train.config import FitConfig


def _hand_log_softmax(row):
    top = max(row)
    log_sum = top + math.log(sum(math.exp(v - top) for v in row))
    return [v - log_sum for v in row]


def test_distillation_equals_hand_computation():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, -0.3]])
    labels = torch.tensor([0, 2])
    teacher_logits = torch.tensor([[1.0, 0.0, -1.0], [0.0, 3.0, 1.0]])
    tau, lam = 0.25, 0.3
    teacher = objectives.teacher_targets(teacher_logits, tau)
    out = objectives.distillation(logits, labels, teacher, lam)
    ce = kd = 0.0
    for row, label, t_row in zip(logits.tolist(), labels.tolist(), teacher_logits.tolist()):
        log_p = _hand_log_softmax(row)
        t_exp = [math.exp(v / tau) for v in t_row]
        t_prob = [v / sum(t_exp) for v in t_exp]
        ce += -log_p[label] / 2
        kd += -sum(p * lp for p, lp in zip(t_prob, log_p)) / 2
    assert out["ce_loss"].item() == pytest.approx(ce, rel=1e-6)
    assert out["kd_loss"].item() == pytest.approx(kd, rel=1e-6)
    assert out["loss"].item() == pytest.approx((1 - lam) * ce + lam * kd, rel=1e-6)


def test_lambda_zero_is_cross_entropy_and_one_is_imitation():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, generator=g)
    labels = torch.randint(0, 4, (6,), generator=g)
    teacher = torch.softmax(torch.randn(6, 4, generator=g), 1)
    plain = objectives.cross_entropy(logits, labels)
    assert objectives.distillation(logits, labels, teacher, 0.0)["loss"] == plain["loss"]
    imitation = objectives.soft_cross_entropy(logits, teacher)
    assert objectives.distillation(logits, labels, teacher, 1.0)["loss"] == imitation


def test_soft_cross_entropy_with_one_hot_targets_is_cross_entropy():
    logits = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 2, 1, 0])
    one_hot = torch.nn.functional.one_hot(labels, 3).float()
    torch.testing.assert_close(
        objectives.soft_cross_entropy(logits, one_hot),
        objectives.cross_entropy(logits, labels)["loss"],
    )


def test_temperature_sharpens_and_softens():
    logits = torch.tensor([[1.0, 0.0]])
    sharp = objectives.teacher_targets(logits, 0.25)[0, 0].item()
    soft = objectives.teacher_targets(logits, 2.5)[0, 0].item()
    assert sharp == pytest.approx(1 / (1 + np.exp(-4.0)))
    assert 0.5 < soft < 1 / (1 + np.exp(-1.0)) < sharp


def test_lambda_default_is_documented_and_checked():
    assert FitConfig().lam == DEFAULT_LAMBDA == 0.5
    with pytest.raises(ValueError, match="lam"):
        FitConfig(lam=1.5)
