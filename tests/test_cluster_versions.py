"""Every node runs the driver's software, or the sweep stops naming the node that differs.

The mismatch is real: one node of a ``ray.cluster_utils`` cluster starts with a PYTHONPATH
that puts another raypi tree (one edited file and another version) before this one, as a
worker would that synced an older tree or installed another release.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from raypi.sweep import node_versions as versions

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    other = tmp_path_factory.mktemp("other")
    shutil.copytree(REPO / "raypi", other / "raypi", ignore=shutil.ignore_patterns("__pycache__"))
    init = other / "raypi" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "', '__version__ = "9.9.9+'))
    # Ray puts the driver's current folder first on every worker's path: run from elsewhere.
    before = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("driver"))  # an empty folder
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    odd = cluster.add_node(num_cpus=1, env_vars={"PYTHONPATH": str(other)})
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster, odd, other
    ray.shutdown()
    cluster.shutdown()
    os.chdir(before)


def test_a_node_with_another_raypi_is_refused_by_name(mixed):
    cluster, odd, _ = mixed
    with pytest.raises(versions.VersionMismatchError) as refused:
        versions.check_cluster(timeout_s=120)
    message = str(refused.value)
    assert odd.node_id in message and "raypi 9.9.9+" in message
    others = [n["NodeID"] for n in ray.nodes() if n["NodeID"] != odd.node_id]
    assert not any(node in message for node in others)  # only the differing node is named


def test_a_node_removed_before_it_answers_is_left_out(mixed):
    cluster, _, _ = mixed
    leaving = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    listed = [n for n in ray.nodes() if n["Alive"] and n["NodeID"] == leaving.node_id]
    asked = versions.ask(listed)  # the autoscaler removes the idle node meanwhile
    cluster.remove_node(leaving, allow_graceful=False)
    assert versions.answers(asked, timeout_s=60) == {}


def test_nodes_of_the_drivers_software_pass(mixed):
    cluster, odd, _ = mixed
    cluster.remove_node(odd)
    mine = versions.check_cluster(timeout_s=120)
    assert mine == versions.versions() and set(versions.FIELDS) <= set(mine)


def test_a_node_joining_mid_sweep_with_other_software_stops_it(mixed):
    cluster, _, other = mixed
    guard = versions.NodeVersionGuard(versions.versions(), interval_s=0)
    assert not guard.stop_all()  # the nodes up were checked before
    late = cluster.add_node(num_cpus=1, env_vars={"PYTHONPATH": str(other)})
    deadline = time.monotonic() + 120
    while not guard.stop_all() and time.monotonic() < deadline:
        time.sleep(1)
    with pytest.raises(versions.VersionMismatchError, match=late.node_id):
        guard.raise_if_refused()
    cluster.remove_node(late)
