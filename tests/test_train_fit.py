import math

import pytest
import torch

from raypi.train import FitConfig, FitData, fit
from raypi.train.heads import HeadShape, build_head
from raypi.train.objectives import teacher_targets

N, M, V, T, D, L, DT = 48, 64, 3, 4, 8, 5, 6


def _data(seed=0, classes=2, views=V):
    g = torch.Generator().manual_seed(seed)

    def rows(n, with_views):
        y = torch.randint(0, classes, (n,), generator=g)
        shape = (n, views, T, D) if with_views else (n, T, D)
        x = torch.randn(*shape, generator=g)
        x[..., 0] += y.float().view(-1, *[1] * (x.ndim - 2))  # one feature carries the label
        text = torch.randn(n, L, DT, generator=g)
        text[..., 0] += 2 * y.float().view(-1, 1)
        return x, y, text, torch.randint(1, L + 1, (n,), generator=g)

    x, y, text, lengths = rows(N, True)
    vx, vy, vtext, vlengths = rows(M, False)
    return FitData(x, y, vx, vy, text, lengths, vtext, vlengths)


def _config(**kw):
    base = dict(epochs=4, lr=3e-3, batch_size=16, seed=0)
    return FitConfig(**{**base, **kw})


def _without_seconds(history):
    """Rows without timings, as text so that NaN equals NaN."""
    return repr([{k: v for k, v in row.items() if k != "seconds"} for row in history])


@pytest.mark.parametrize("method", ["image", "teacher", "text"])
def test_result_shapes_for_models_that_teach(method):
    result = fit(_data(classes=3), _config(method=method, num_classes=3))
    assert len(result.history) == 4
    assert set(result.history[0]) == {
        "epoch",
        "loss",
        "ce_loss",
        "kd_loss",
        "val_auc",
        "val_auprc",
        "val_loss",
        "select_auc",
        "select_auprc",
        "select_loss",
        "seconds",
    }
    assert 1 <= result.best_epoch <= 4
    assert result.val_probs_final.shape == result.val_probs_best.shape == (M, 3)
    assert result.train_logits_best.shape == (N, 3)
    torch.testing.assert_close(result.val_probs_final.sum(1), torch.ones(M))
    assert math.isnan(result.history[0]["kd_loss"])


def test_student_shapes_and_loss_parts():
    data = _data()
    data.teacher_probs = teacher_targets(
        fit(data, _config(method="teacher")).train_logits_best, 0.25
    )
    result = fit(data, _config(method="distill", lam=0.5))
    assert result.train_logits_best is None and result.val_probs_best.shape == (M, 2)
    row = result.history[-1]
    assert row["loss"] == pytest.approx(0.5 * row["ce_loss"] + 0.5 * row["kd_loss"], rel=1e-5)


@pytest.mark.parametrize("head", ["attention", "mean_lp", "cls_lp"])
def test_image_heads_train_on_three_dim_tokens(head):
    data = _data(views=1)
    data.train_tokens = data.train_tokens[:, 0]
    result = fit(data, _config(head=head, epochs=2))
    assert result.val_probs_final.shape == (M, 2)


def test_missing_inputs_are_named():
    with pytest.raises(ValueError, match="teacher_probs"):
        fit(_data(), _config(method="distill"))
    data = _data()
    data.train_text_lengths = None
    with pytest.raises(ValueError, match="train_text_lengths"):
        fit(data, _config(method="teacher"))
    with pytest.raises(ValueError, match="method"):
        FitConfig(method="kd")


def test_same_seed_same_history_and_predictions():
    data = _data()
    first = fit(data, _config(method="teacher"))
    second = fit(data, _config(method="teacher"))
    assert _without_seconds(first.history) == _without_seconds(second.history)
    assert torch.equal(first.val_probs_final, second.val_probs_final)
    assert torch.equal(first.train_logits_best, second.train_logits_best)
    other = fit(data, _config(method="teacher", seed=1))
    assert _without_seconds(other.history) != _without_seconds(first.history)


def test_fit_leaves_global_rng_and_threads_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    fit(_data(), _config(epochs=1))
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


def test_lambda_zero_distillation_equals_plain_training():
    data = _data()
    plain = fit(data, _config(method="image"))
    data.teacher_probs = torch.softmax(torch.randn(N, 2), 1)
    student = fit(data, _config(method="distill", lam=0.0))
    for a, b in zip(plain.history, student.history):
        assert (a["loss"], a["val_auc"], a["val_auprc"]) == (
            b["loss"],
            b["val_auc"],
            b["val_auprc"],
        )
    assert torch.equal(plain.val_probs_final, student.val_probs_final)


def test_saved_teacher_outputs_are_those_of_the_best_epoch():
    data = _data(seed=3)
    config = _config(method="teacher", epochs=8, lr=3e-2)
    result = fit(data, config)
    aucs = [row["val_auc"] for row in result.history]
    assert result.best_epoch == aucs.index(max(aucs)) + 1 and result.best_val_auc == max(aucs)
    assert result.best_epoch != len(aucs), "pick a setting whose best epoch is not the last"
    head = build_head("teacher", HeadShape(image_dim=D, num_classes=2, text_dim=DT))
    head.load_state_dict(result.best_state)
    head.eval()
    with torch.no_grad():
        train_logits = head(data.train_tokens[:, 0], data.train_text, data.train_text_lengths)
        val_probs = torch.softmax(head(data.val_tokens, data.val_text, data.val_text_lengths), 1)
    torch.testing.assert_close(result.train_logits_best, train_logits)
    torch.testing.assert_close(result.val_probs_best, val_probs)
    assert not torch.allclose(result.val_probs_best, result.val_probs_final)


def test_training_samples_augmented_views_only():
    data = _data()
    data.train_tokens[:, 0] = float("nan")  # view 0 is never a training view by default
    result = fit(data, _config(keep_train_outputs=False))
    assert all(math.isfinite(row["loss"]) for row in result.history)
    everything = fit(data, _config(keep_train_outputs=False, train_views="all"))
    assert not all(math.isfinite(row["loss"]) for row in everything.history)


def test_one_class_validation_warns_with_context_and_returns_nan():
    data = _data()
    data.val_labels = torch.zeros(M, dtype=torch.long)
    with pytest.warns(RuntimeWarning, match="age/seed=4"):
        result = fit(data, _config(context="age/seed=4"))
    assert all(math.isnan(row["val_auc"]) for row in result.history)
    assert result.best_epoch == 4


def test_bf16_autocast_trains():
    result = fit(_data(), _config(dtype="bf16"))
    assert all(math.isfinite(row["loss"]) for row in result.history)
    assert result.val_probs_final.dtype == torch.float32


def _privileged_problem(n, generator):
    """Labels = sign of a latent s, 20% flipped at random; reports show s, images barely do.

    A report-reading teacher recovers s, and its sharpened outputs (τ = 0.25) are near-clean
    labels; an image-only teacher trained on the same flipped labels cannot clean them.
    """
    s = torch.randn(n, generator=generator)
    flip = torch.rand(n, generator=generator) < 0.2
    labels = ((s > 0) ^ flip).long()
    pattern = torch.zeros(64)
    pattern[:16], pattern[16:32] = 1.0, -1.0  # balanced, so LayerNorm keeps the sign of s
    image = torch.randn(n, 4, 64, generator=generator) + 0.1 * s[:, None, None] * pattern
    text_pattern = torch.cat([torch.ones(8), -torch.ones(8)])
    text = torch.randn(n, 6, 16, generator=generator) + s[:, None, None] * text_pattern
    lengths = torch.randint(2, 7, (n,), generator=generator)
    return image, labels, text, lengths


def test_privileged_teacher_helps_and_self_distillation_does_not():
    gains, self_gains = [], []
    for seed in range(3):
        image, labels, text, lengths = _privileged_problem(100, torch.Generator().manual_seed(seed))
        val = _privileged_problem(1000, torch.Generator().manual_seed(100 + seed))
        data = FitData(image, labels, val[0], val[1], text, lengths, val[2], val[3])
        config = dict(epochs=40, lr=3e-3, batch_size=32, seed=seed, lam=1.0)
        teacher = fit(data, FitConfig(method="teacher", **config))
        plain = fit(data, FitConfig(method="image", **config))
        data.teacher_probs = teacher_targets(teacher.train_logits_best, 0.25)
        student = fit(data, FitConfig(method="distill", **config))
        data.teacher_probs = teacher_targets(plain.train_logits_best, 0.25)
        self_student = fit(data, FitConfig(method="self_distill", **config))
        gains.append(student.best_val_auc - plain.best_val_auc)
        self_gains.append(self_student.best_val_auc - plain.best_val_auc)
    gain, self_gain = sum(gains) / 3, sum(self_gains) / 3
    assert gain > 0.025, (gains, self_gains)
    assert gain - self_gain > 0.015 and self_gain < gain / 2, (gains, self_gains)


def _clean_features_problem(n, generator, dim=50):
    """Lopez-Paz et al. (2016) §4.1, clean features as privileged information.

    Labels are the sign of a linear score of clean features x*; the report holds x* itself,
    the image only x* plus as much noise again. A teacher reading x* alone ranks rows by their
    margin, so its softened outputs (τ = 5) grade every training row: more to learn from than
    the hard labels when 100 rows must pin down 50 weights.
    """
    clean = torch.randn(n, dim, generator=generator)
    labels = (clean @ torch.linspace(-1, 1, dim) > 0).long()
    image = (clean + torch.randn(n, dim, generator=generator))[:, None, :]
    return image, labels, clean[:, None, :], torch.ones(n, dtype=torch.long)


def test_clean_privileged_features_teach_the_noisy_image_student():
    gains = []
    for seed in range(5):
        train = _clean_features_problem(100, torch.Generator().manual_seed(seed))
        val = _clean_features_problem(1000, torch.Generator().manual_seed(100 + seed))
        data = FitData(train[0], train[1], val[0], val[1], train[2], train[3], val[2], val[3])
        config = dict(epochs=100, lr=3e-3, batch_size=32, seed=seed, lam=1.0)
        teacher = fit(data, FitConfig(method="text", **config))  # the report alone, as theirs
        plain = fit(data, FitConfig(method="image", **config))
        data.teacher_probs = teacher_targets(teacher.train_logits_best, 5.0)
        student = fit(data, FitConfig(method="distill", **config))
        gains.append(student.final_val_auc - plain.final_val_auc)
    assert sum(gains) / len(gains) > 0.01 and sum(g > 0 for g in gains) >= 4, gains
