"""How a pack's members are planned into stacks (no Ray: planning only)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from raypi.sweep import Grid, SweepSpec
from raypi.sweep.grid import expand
from raypi.sweep.packs import make_packs, plan_stacks
from raypi.sweep.synthetic import make_synthetic_study


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return make_synthetic_study(str(tmp_path_factory.mktemp("study")),
                                image_encoders=("tiny_vit",))  # fmt: skip


def _members(study, **changes):
    grid = Grid(tasks=("demo_prognostic",), encoders=("tiny_vit",), seeds=(0,),
                sizes=(20, 40, 80), lams=(0.3, 0.7), taus=(1.0,), **changes)  # fmt: skip
    packs = make_packs(expand(SweepSpec(name="s", grids=(grid,), data={"demo": study})))
    assert len(packs) == 1
    return next(iter(packs.values()))


def test_members_of_one_head_and_stage_stack_across_sizes(study):
    members = _members(study)
    stacks = plan_stacks(members)
    assert sum(len(s) for s in stacks) == len(members) == 3 * (1 + 1 + 4)
    kinds = [({t.method for t in s}, sorted({t.size for t in s})) for s in stacks]
    assert kinds == [({"image"}, [20, 40, 80]), ({"teacher"}, [20, 40, 80]),
                     ({"distill", "self_distill"}, [20, 40, 80])]  # fmt: skip
    assert len(stacks[-1]) == 12
    seen = set()
    for stack in stacks:  # every student's teacher is trained in an earlier stack
        assert all(t.teacher_key in seen for t in stack if t.is_student)
        seen |= {t.trial_key for t in stack}


def test_no_stack_keeps_one_member_at_a_time(study):
    members = _members(study)
    assert plan_stacks(members, stack=False) == [[m] for m in members]


def test_inner_protocol_and_precision_split_stacks(study):
    members = _members(study, selection_split="inner")
    assert all(len({t.size for t in s}) == 1 for s in plan_stacks(members))
    mixed = [replace(t, dtype="bf16") if t.size == 20 else t for t in _members(study)]
    assert len(plan_stacks(mixed)) == 6


def _tensors(data) -> dict:
    names = ("train_tokens", "train_labels", "val_tokens", "select_tokens", "select_labels",
             "train_text", "train_text_lengths", "select_text")  # fmt: skip
    return {name: getattr(data, name) for name in names}


@pytest.mark.parametrize("selection", ["val", "inner"])
def test_a_member_gets_the_same_tensors_in_a_pack_of_one_and_of_many(study, selection):
    from raypi.sweep.working_set import load_working_set, member_data

    members = _members(study, selection_split=selection, text_encoders=("tiny_bert",))
    pack = load_working_set(members)
    for member in members:
        data, ids = member_data(pack, member)
        alone, alone_ids = member_data(load_working_set([member]), member)
        assert ids == alone_ids and len(ids) <= member.size
        for name, tensor in _tensors(alone).items():
            other = _tensors(data)[name]
            assert (tensor is None) == (other is None), name
            assert tensor is None or torch.equal(tensor, other), name
        if selection == "inner":
            assert len(ids) + len(data.select_labels) == member.size


def test_packs_of_one_ask_only_their_own_resources(study):
    from raypi.sweep import LaunchOptions
    from raypi.sweep.packs import plan_packs

    members = _members(study)
    options = LaunchOptions(use_gpu=False)
    spec = SweepSpec(name="s", grids=(), data={"demo": study})
    alone, packed = (
        plan_packs(spec, members, options, together=False),
        plan_packs(spec, members, options),
    )
    assert alone.order == [t.trial_key for t in members] and alone.memory == {}
    assert all(alone.packs[key] == [t] for key, t in zip(alone.order, members))
    assert alone.bundles[members[0].trial_key] == {"CPU": 1.0, "GPU": 0.0}
    assert list(packed.packs) == packed.order and len(packed.order) == 1
    assert packed.memory[packed.order[0]] > 1.5e9  # twice the working set plus 1.5 GB
    with pytest.raises(ValueError, match="undecided"):
        plan_packs(spec, members, LaunchOptions())
