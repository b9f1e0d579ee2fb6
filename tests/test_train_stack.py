"""Stacked training equals each member's own fit: float64 to 1e-9, fp32 to 1e-5 AUC."""

import math

import pytest
import torch

from raypi.train import FitConfig, FitData, fit, fit_stack
from raypi.train._stacked import MemberAdam
from raypi.train.objectives import teacher_targets

N, M, S, V, T, D, L, DT = 48, 40, 24, 3, 4, 8, 5, 6


def _rows(n, generator, views):
    y = torch.randint(0, 2, (n,), generator=generator)
    x = torch.randn(n, *((views,) if views else ()), T, D, generator=generator)
    x[..., 0] += y.to(x.dtype).view(-1, *[1] * (x.ndim - 2))
    text = torch.randn(n, L, DT, generator=generator)
    text[..., 0] += 2 * y.to(text.dtype).view(-1, 1)
    return x, y, text, torch.randint(1, L + 1, (n,), generator=generator)


def _pool(seed=0, select=False):
    """Training pool, validation rows (and a selection split) in the default dtype."""
    g = torch.Generator().manual_seed(seed)
    x, y, text, lengths = _rows(N, g, V)
    vx, vy, vtext, vlengths = _rows(M, g, None)
    data = FitData(x, y, vx, vy, text, lengths, vtext, vlengths)
    if select:
        sx, sy, stext, slengths = _rows(S, g, None)
        data.select_tokens, data.select_labels = sx, sy
        data.select_text, data.select_text_lengths = stext, slengths
    return data


def _member(pool: FitData, size: int) -> FitData:
    """A nested subset: the first ``size`` training rows; validation shared (same tensors)."""
    data = FitData(**vars(pool))
    for name in ("train_tokens", "train_labels", "train_text", "train_text_lengths"):
        setattr(data, name, getattr(pool, name)[:size])
    if pool.teacher_probs is not None:
        data.teacher_probs = pool.teacher_probs[:size]
    return data


@pytest.fixture
def float64():
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


# (size, epochs, seed, lr, batch size): different sizes, epochs (the 20-row member leaves the
# stack after 2 epochs), learning rates and batch sizes in one stack.
MEMBERS = [(48, 4, 0, 3e-3, 16), (20, 2, 1, 1e-2, 8), (33, 5, 2, 3e-3, 16)]


def _configs(**settings):
    return [
        FitConfig(epochs=e, seed=s, lr=lr, batch_size=b, **settings) for _, e, s, lr, b in MEMBERS
    ]


def _worst(stacked, alone) -> float:
    """Largest difference of any history value, kept-epoch output or teacher logit."""
    assert [r["epoch"] for r in stacked.history] == [r["epoch"] for r in alone.history]
    assert stacked.best_epoch == alone.best_epoch
    worst = 0.0
    for a, b in zip(stacked.history, alone.history):
        for name in a.keys() - {"seconds"}:
            assert math.isnan(a[name]) == math.isnan(b[name]), name
            worst = max(worst, 0.0 if math.isnan(a[name]) else abs(a[name] - b[name]))
    pairs = [
        (stacked.val_probs_best, alone.val_probs_best),
        (stacked.val_probs_final, alone.val_probs_final),
        *((stacked.best_state[k], alone.best_state[k]) for k in alone.best_state),
    ]
    if alone.train_logits_best is not None:
        pairs.append((stacked.train_logits_best, alone.train_logits_best))
    return max(worst, *(float((a - b).abs().max()) for a, b in pairs))


def _both(pool, configs):
    datas = [_member(pool, size) for size, *_ in MEMBERS]
    return fit_stack(datas, configs), [fit(d, c) for d, c in zip(datas, configs)]


@pytest.mark.parametrize(
    ("method", "head"),
    [
        ("image", "attention"),
        ("teacher", "attention"),
        ("text", "attention"),
        ("image", "mean_lp"),
        ("teacher", "cls_lp"),
    ],
)
def test_members_equal_their_own_fit_in_float64(float64, method, head):
    stacked, alone = _both(_pool(), _configs(method=method, head=head, dropout=0.2))
    assert [len(r.history) for r in stacked] == [e for _, e, *_ in MEMBERS]
    for s, a in zip(stacked, alone):
        assert _worst(s, a) < 1e-9
    assert torch.is_tensor(alone[0].best_state["classifier.weight"])
    assert alone[0].best_state["classifier.weight"].dtype == torch.float64


def test_members_match_in_fp32_within_auc_tolerance():
    stacked, alone = _both(_pool(), _configs(method="teacher", dropout=0.2))
    for s, a in zip(stacked, alone):
        assert s.best_epoch == a.best_epoch
        for x, y in zip(s.history, a.history):
            assert abs(x["val_auc"] - y["val_auc"]) <= 1e-5
        torch.testing.assert_close(s.train_logits_best, a.train_logits_best, atol=1e-4, rtol=1e-4)


def test_students_of_stacked_teachers_equal_sequential(float64):
    pool = _pool(seed=2)
    teachers, alone = _both(pool, _configs(method="teacher"))
    students, sequential = [], []
    for result, reference in ((teachers, students), (alone, sequential)):
        datas = []
        for (size, *_), teacher in zip(MEMBERS, result):
            data = _member(pool, size)
            data.teacher_probs = teacher_targets(teacher.train_logits_best, 0.5)
            datas.append(data)
        methods = ("distill", "self_distill", "distill")
        configs = [
            FitConfig(method=m, lam=lam, epochs=e, seed=s, lr=lr, batch_size=b)
            for m, lam, (_, e, s, lr, b) in zip(methods, (0.5, 0.3, 1.0), MEMBERS)
        ]
        if reference is students:
            reference.extend(fit_stack(datas, configs))
        else:
            reference.extend(fit(d, c) for d, c in zip(datas, configs))
    for s, a in zip(students, sequential):
        assert _worst(s, a) < 1e-9
        assert not math.isnan(s.history[-1]["kd_loss"])


def test_selection_split_and_validate_every(float64):
    pool = _pool(seed=3, select=True)
    configs = [
        FitConfig(
            method="image",
            epochs=e,
            seed=s,
            lr=lr,
            batch_size=b,
            selection="last",
            validate_every=2,
        )
        for _, e, s, lr, b in MEMBERS
    ]
    stacked, alone = _both(pool, configs)
    for s, a in zip(stacked, alone):
        assert _worst(s, a) < 1e-9
    history = alone[0].history  # 4 epochs, validated at 2 and 4
    assert [math.isnan(r["val_auc"]) for r in history] == [True, False, True, False]
    assert math.isnan(alone[2].history[-2]["val_auc"]) is False  # 5 epochs: 2, 4 and the last
    assert not math.isnan(alone[2].history[-1]["select_auc"])


def test_validate_every_needs_a_fit_that_chooses_nothing():
    with pytest.raises(ValueError, match="selection 'last'"):
        FitConfig(validate_every=2)


def test_members_that_cannot_stack_are_refused():
    pool = _pool()
    datas = [_member(pool, 20), _member(pool, 30)]
    with pytest.raises(ValueError, match="differs in head_name"):
        fit_stack(datas, [FitConfig(method="image"), FitConfig(method="teacher")])
    other = _pool(seed=9)
    datas[1].val_labels = other.val_labels
    with pytest.raises(ValueError, match="other val_labels"):
        fit_stack(datas, [FitConfig(), FitConfig(seed=1)])


def test_a_member_that_sits_out_does_not_move(float64):
    """Adam of the members that step equals torch's; the one that sits out keeps its state."""
    torch.manual_seed(0)
    params = {"w": torch.randn(3, 4, 2, requires_grad=True)}
    adam = MemberAdam(params, [1e-2, 1e-3, 1e-2])
    alone = [torch.nn.Parameter(params["w"][i].detach().clone()) for i in range(3)]
    torch_adams = [torch.optim.Adam([p], lr=lr) for p, lr in zip(alone, [1e-2, 1e-3, 1e-2])]
    for step in range(5):
        grad = torch.randn(3, 4, 2)
        taking = [0, 2] if step % 2 else [0, 1, 2]
        params["w"].grad = grad.clone()
        adam.step(taking)
        for i in taking:
            alone[i].grad = grad[i].clone()
            torch_adams[i].step()
    for i in range(3):
        torch.testing.assert_close(params["w"][i].detach(), alone[i].detach(), rtol=0, atol=1e-12)
    steps = [adam.optimizer.state[view]["step"] for view in (v["w"] for v in adam.views)]
    assert [int(s) for s in steps] == [5, 3, 5]
