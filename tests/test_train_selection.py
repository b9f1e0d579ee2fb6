"""Which epoch a fit keeps: the tie rule, the named alternatives, and a separate selection split."""

import math

import pytest
import torch

from raypi.train import FitConfig, FitData, fit
from raypi.train.objectives import teacher_targets


def _plateau_problem(n, generator, flip_rate):
    """The report states the clean label; images show its latent weakly; 20% train flips.

    The report's privileged signal is one sign, nearly linear after LayerNorm: the teacher
    ranks the (clean) validation rows perfectly after one epoch, so every later epoch ties on
    AUC. Its logits keep growing, so its later epochs teach confident clean labels.
    """
    s = torch.randn(n, generator=generator)
    flip = torch.rand(n, generator=generator) < flip_rate
    labels = ((s > 0) ^ flip).long()
    pattern = torch.zeros(64)
    pattern[:16], pattern[16:32] = 1.0, -1.0
    base = torch.linspace(-2, 2, 64)
    image = base + 0.1 * torch.randn(n, 4, 64, generator=generator)
    image += 0.05 * s[:, None, None] * pattern
    text = 0.01 * torch.randn(n, 3, 8, generator=generator)
    text[:, :, 0] += s.sign()[:, None]
    text[:, :, 1] -= s.sign()[:, None]
    text[:, :, 2] += 1.0
    text[:, :, 3] -= 1.0
    return image, labels, text, torch.full((n,), 3)


def _plateau_data(seed):
    train = _plateau_problem(400, torch.Generator().manual_seed(seed), 0.2)
    val = _plateau_problem(1000, torch.Generator().manual_seed(100 + seed), 0.0)
    return FitData(train[0], train[1], val[0], val[1], train[2], train[3], val[2], val[3])


def test_plateaued_teacher_is_kept_at_its_latest_tied_epoch_and_teaches():
    gains = []
    for seed in range(2):
        data = _plateau_data(seed)
        config = dict(epochs=20, lr=1e-3, batch_size=32, seed=seed, lam=0.5)
        teacher = fit(data, FitConfig(method="teacher", **config))
        aucs = [row["val_auc"] for row in teacher.history]
        assert aucs[2:].count(1.0) == len(aucs) - 2, aucs  # the plateau this test is about
        last_tie = max(i for i, auc in enumerate(aucs) if auc == max(aucs)) + 1
        assert teacher.best_epoch == last_tie > 3, aucs
        teacher_probs = teacher_targets(teacher.train_logits_best, 0.25)
        assert teacher_probs.max(dim=1).values.mean() > 0.95
        plain = fit(data, FitConfig(method="image", **config))
        data.teacher_probs = teacher_probs
        student = fit(data, FitConfig(method="distill", **config))
        gains.append(student.final_val_auc - plain.final_val_auc)
    assert min(gains) > 0.01, gains


def _tiny_data(seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (96,), generator=g)
    x = torch.randn(96, 4, 8, generator=g)
    x[..., 0] += y.float().view(-1, 1)
    return FitData(x[:64], y[:64], x[64:], y[64:])


def test_loss_and_last_selection_keep_their_epochs():
    data = _tiny_data()
    base = dict(epochs=6, lr=3e-2, batch_size=16, seed=0)
    by_loss = fit(data, FitConfig(selection="loss", **base))
    losses = [row["val_loss"] for row in by_loss.history]
    assert by_loss.best_epoch == len(losses) - losses[::-1].index(min(losses))
    assert fit(data, FitConfig(selection="last", **base)).best_epoch == 6
    with pytest.raises(ValueError, match="selection"):
        FitConfig(selection="first")


def test_separate_selection_split_chooses_the_epoch_and_never_reads_validation():
    data = _tiny_data(1)
    select = _tiny_data(2)
    data.select_tokens, data.select_labels = select.val_tokens, select.val_labels
    base = dict(epochs=6, lr=3e-2, batch_size=16, seed=0, method="image")
    result = fit(data, FitConfig(**base))
    chosen = [row["select_auc"] for row in result.history]
    last_max = len(chosen) - chosen[::-1].index(max(chosen))
    assert result.best_epoch == last_max
    assert result.best_select_auc == max(chosen)
    assert result.best_val_auc == result.history[last_max - 1]["val_auc"]
    # Scrambling the validation labels changes the reported AUCs but not the kept epoch.
    data.val_labels = data.val_labels.flip(0)
    again = fit(data, FitConfig(**base))
    assert again.best_epoch == result.best_epoch
    assert [r["val_auc"] for r in again.history] != [r["val_auc"] for r in result.history]


def test_without_selection_split_selection_columns_equal_validation():
    result = fit(_tiny_data(), FitConfig(epochs=3, lr=1e-2, batch_size=16))
    for row in result.history:
        assert row["select_auc"] == row["val_auc"] and row["select_loss"] == row["val_loss"]
        assert math.isfinite(row["val_loss"])


def test_selection_split_of_wrong_shape_is_named():
    data = _tiny_data()
    data.select_labels = torch.zeros(5, dtype=torch.long)
    data.select_tokens = torch.zeros(4, 4, 8)
    with pytest.raises(ValueError, match="select_tokens"):
        fit(data, FitConfig(epochs=1))
