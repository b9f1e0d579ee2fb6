"""cluster.yaml: valid for Ray's own schema, locked down, one environment on every node."""

from __future__ import annotations

import json
import shlex
from importlib import metadata
from pathlib import Path

import pytest
import yaml

pytest.importorskip("ray")
REPO = Path(__file__).resolve().parents[1]
CLUSTER = yaml.safe_load((REPO / "cluster.yaml").read_text())
TYPES = CLUSTER["available_node_types"]
WORKERS = {name: kind for name, kind in TYPES.items() if name != CLUSTER["head_node_type"]}


def _constraints() -> dict[str, str]:
    lines = (REPO / "constraints.txt").read_text().splitlines()
    pins = [line.split("==") for line in lines if line and not line.startswith("#")]
    return {name.lower(): version for name, version in pins}


def test_cluster_yaml_passes_rays_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(yaml.safe_load((REPO / "cluster.yaml").read_text())))


def test_every_node_brings_its_own_security_group_so_ray_opens_no_ssh_to_the_world():
    # Ray creates a group with SSH from 0.0.0.0/0 unless every node type names its own.
    for kind in TYPES.values():
        config = kind["node_config"]
        groups = config.get("SecurityGroupIds") or config["NetworkInterfaces"][0]["Groups"]
        assert groups
    assert "0.0.0.0/0" not in (REPO / "cluster.yaml").read_text()


def test_workers_get_no_public_ip_and_every_volume_is_encrypted():
    for kind in WORKERS.values():
        assert kind["node_config"]["NetworkInterfaces"][0]["AssociatePublicIpAddress"] is False
    for kind in TYPES.values():
        assert all(m["Ebs"]["Encrypted"] for m in kind["node_config"]["BlockDeviceMappings"])


def test_every_node_starts_ray_with_token_authentication():
    assert CLUSTER["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = next(c for c in CLUSTER[key] if "ray start" in c)
        assert "export RAY_AUTH_MODE=token" in start


def test_nodes_install_the_locked_versions_that_make_installs():
    setup = " ".join(CLUSTER["setup_commands"])
    assert "pip install -q -c ~/raypi/constraints.txt -e ~/raypi" in setup
    assert "-c constraints.txt" in (REPO / "Makefile").read_text()
    pins = _constraints()
    for name in ("ray", "torch", "torchvision", "numpy", "pyarrow"):
        assert pins[name] == metadata.version(name), name  # this venv is the locked one


def test_head_policy_grants_the_bucket_the_autoscaler_and_passing_the_worker_role():
    statements = json.loads((REPO / "cluster-iam-policy.json").read_text())["Statement"]
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str)
                                                else s["Action"])}  # fmt: skip
    assert {"s3:GetObject", "s3:PutObject", "s3:ListBucket"} <= actions
    assert {"ec2:RunInstances", "ec2:TerminateInstances", "ec2:CreateTags"} <= actions
    passing = next(s for s in statements if s["Action"] == "iam:PassRole")
    worker_profile = WORKERS["gpu_16gb"]["node_config"]["IamInstanceProfile"]["Arn"]
    assert passing["Resource"].rsplit("/", 1)[1] == worker_profile.rsplit("/", 1)[1]
    head = TYPES[CLUSTER["head_node_type"]]["node_config"]["IamInstanceProfile"]["Arn"]
    assert head.endswith("/raypi-head")


def test_the_head_starts_with_the_flags_the_tests_start_it_with():
    words = shlex.split(" ".join(CLUSTER["head_start_ray_commands"]))
    assert "--dashboard-host=127.0.0.1" in words
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in words
