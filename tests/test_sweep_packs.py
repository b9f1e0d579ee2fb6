"""How a pack's members are planned into stacks (no Ray: planning only)."""

from __future__ import annotations

from dataclasses import replace

import pytest

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
