from dataclasses import replace

import pytest
import torch

from raypi.heads import HEAD_TABLE, IMAGE_HEADS, POOLS, HeadSpec, head_spec, image_head
from raypi.train import heads
from raypi.train._attention import AttentionPool, reference_forward
from raypi.train.heads import HeadShape, build_head, list_heads, register_head

B, T, D, L, DT, C = 4, 5, 12, 7, 8, 3


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(B, T, D, generator=g)
    text = torch.randn(B, L, DT, generator=g)
    lengths = torch.tensor([1, 3, 7, 5])
    return image, text, lengths


def test_registry_knows_the_study_heads():
    assert {"attention", "mean_lp", "cls_lp", "teacher", "text"} <= set(list_heads())


def test_unknown_head_lists_known_ones():
    with pytest.raises(KeyError, match="attention.*cls_lp"):
        build_head("transformer", HeadShape(image_dim=D, num_classes=C))


def test_duplicate_registration_raises():
    with pytest.raises(ValueError, match="already registered"):
        register_head("attention")(heads.attention_head)


def test_every_head_spec_has_a_module_and_every_module_a_spec():
    assert list_heads() == sorted(HEAD_TABLE)
    with pytest.raises(KeyError, match="no entry in raypi.heads.HEAD_TABLE"):
        register_head("transformer")
    shape = HeadShape(image_dim=D, num_classes=C, text_dim=DT)
    kinds = {"attention": AttentionPool, "mean": heads.MeanPool, "cls": heads.ClsPool}
    assert set(heads.POOL_MODULES) == set(POOLS) == set(kinds)
    for name in IMAGE_HEADS:  # each image head pools as its spec says
        assert isinstance(build_head(name, shape).pool, kinds[HEAD_TABLE[name].pool])
        teacher = build_head("teacher", replace(shape, image_pool=name))
        assert isinstance(teacher.image_pool, kinds[HEAD_TABLE[name].pool])
    assert isinstance(build_head("text", shape).pool, kinds[HEAD_TABLE["text"].pool])


def test_head_table_refuses_bad_entries_and_names_image_heads():
    assert IMAGE_HEADS == ("attention", "mean_lp", "cls_lp")
    assert [HEAD_TABLE[name].lr for name in IMAGE_HEADS] == [1e-4, 1e-3, 1e-3]
    assert [name for name, spec in HEAD_TABLE.items() if spec.needs_cls] == ["cls_lp"]
    with pytest.raises(ValueError, match="image heads: attention, mean_lp, cls_lp"):
        image_head("teacher")
    with pytest.raises(KeyError, match="known heads: attention, mean_lp"):
        head_spec("mlp")
    with pytest.raises(ValueError, match="flops must be one of"):
        HeadSpec("mlp", "MLP", "quadratic")
    with pytest.raises(ValueError, match="pool must be one of"):
        HeadSpec("mlp", "MLP", "linear", pool="max", lr=1e-3)


def test_flop_model_follows_the_head_table():
    from raypi.train._flops import attention_executed_flops, batch_flops

    attention = 8 * attention_executed_flops(T, D, batch=8)
    assert batch_flops("attention", T, D, 8) == batch_flops("text", T, D, 8) == attention
    assert batch_flops("mean_lp", T, D, 8) == batch_flops("cls_lp", T, D, 8) == 8 * 8 * T * D
    with pytest.raises(KeyError, match="unknown head 'mlp'"):
        batch_flops("mlp", T, D, 8)


@pytest.mark.parametrize("name", ["attention", "mean_lp", "cls_lp", "teacher", "text"])
def test_output_shapes(name):
    torch.manual_seed(0)
    head = build_head(name, HeadShape(image_dim=D, num_classes=C, text_dim=DT))
    image, text, lengths = _inputs()
    logits = head(image=image, text=text, text_lengths=lengths)
    assert logits.shape == (B, C)
    assert torch.isfinite(logits).all()


def test_qkv_width_defaults_to_input_width_and_is_a_parameter():
    assert AttentionPool(D).query.out_features == D
    assert AttentionPool(D, qkv_dim=4).out_dim == 4
    head = build_head("attention", HeadShape(image_dim=D, num_classes=C, qkv_dim=5))
    assert head.classifier.in_features == 5


def _grads(output, module):
    params = list(module.parameters())
    grads = torch.autograd.grad(output.square().sum(), params, allow_unused=True)
    # The key bias only shifts every score of a row equally, which softmax ignores: its
    # gradient is exactly zero (the merged form leaves it out of the graph).
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


@pytest.mark.parametrize("qkv_dim", [None, 4])
@pytest.mark.parametrize("merged", [True, False])  # merged bilinear scores, or separate q/k
@pytest.mark.parametrize("masked", [False, True])
def test_fast_attention_pool_equals_plain_computation(qkv_dim, merged, masked):
    torch.manual_seed(1)
    pool = AttentionPool(D, qkv_dim=qkv_dim, dropout=0.2)
    pool.merged = merged
    with torch.no_grad():  # non-trivial LayerNorm affine and biases
        for p in pool.parameters():
            p.add_(0.3 * torch.randn_like(p))
    image, _, _ = _inputs()
    lengths = torch.tensor([1, 3, 5, 2]) if masked else None
    for training in (False, True):
        pool.train(training)
        torch.manual_seed(7)  # same dropout mask: both draw one [B, T, T] mask
        fast = pool(image, lengths)
        grads_fast = _grads(fast, pool)
        torch.manual_seed(7)
        plain = reference_forward(pool, image, lengths)
        grads_plain = _grads(plain, pool)
        torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5)
        for got, want in zip(grads_fast, grads_plain):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["teacher", "text"])
def test_report_padding_never_changes_the_output(name):
    torch.manual_seed(2)
    head = build_head(name, HeadShape(image_dim=D, num_classes=C, text_dim=DT)).eval()
    image, text, lengths = _inputs()
    before = head(image=image, text=text, text_lengths=lengths)
    # Different padding values, and more padding positions.
    padded = torch.cat([text, torch.randn(B, 6, DT) * 100], dim=1)
    valid = torch.arange(padded.shape[1]) < lengths[:, None]
    padded = torch.where(valid[:, :, None], padded, torch.full_like(padded, 1e4))
    after = head(image=image, text=padded, text_lengths=lengths)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


def test_empty_report_gives_finite_output():
    head = build_head("teacher", HeadShape(image_dim=D, num_classes=C, text_dim=DT)).eval()
    image, text, _ = _inputs()
    logits = head(image=image, text=text, text_lengths=torch.zeros(B, dtype=torch.long))
    assert torch.isfinite(logits).all()


def test_mean_lp_skips_cls_token_when_asked():
    image, _, _ = _inputs()
    plain = heads.MeanPool(D, skip_first=False)
    local = heads.MeanPool(D, skip_first=True)
    changed = image.clone()
    changed[:, 0, 0] += 5.0  # one feature, so LayerNorm does not undo it
    torch.testing.assert_close(local(changed), local(image))
    assert not torch.allclose(plain(changed), plain(image))
