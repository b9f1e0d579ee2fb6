"""A corrupt feature shard is named and never served; rerunning ``raypi extract`` repairs it.

Shards are written with Parquet page checksums. A truncated shard fails at its footer, a
shard with flipped bytes at the first read of the changed page; either way the reader raises
``ShardError`` naming the file. ``extract`` removes unreadable shards before resuming — by
their footers always, reading every page with ``verify=True`` — and encodes exactly their
rows again: the repaired store equals the one before the damage, the other shards untouched.
"""

import pytest
import ray
import torch

from raypi.data.demo import build_demo
from raypi.data.tables import read_dataset
from raypi.features import extract, load, store
from raypi.features.store import ShardError

ENCODER = "tiny_vit"


@pytest.fixture(scope="module")
def cluster():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("corrupt") / "demo"
    build_demo(root, n=48, seed=4)
    return str(root)


def _shards(out: str) -> dict[str, bytes]:
    return {path: open(path, "rb").read() for path in sorted(store.list_shards(out, ENCODER))}


def test_corrupt_shards_are_named_refused_and_repaired(cluster, demo, tmp_path):
    out = str(tmp_path / "store")
    extract(demo, [ENCODER], out, batch_size=8)
    ids = list(read_dataset(demo)["image_id"])
    reference = load(out, ENCODER, ids, views=0)
    before = _shards(out)
    assert len(before) == 6
    truncated, flipped, *untouched = before

    data = bytearray(before[flipped])
    middle = len(data) // 2  # inside the token pages, which are most of the file
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    open(flipped, "wb").write(bytes(data))
    with pytest.raises(ShardError, match=flipped):
        load(out, ENCODER, ids, views=0)
    open(truncated, "wb").write(before[truncated][: len(before[truncated]) // 3])
    with pytest.raises(ShardError, match=truncated) as error:
        load(out, ENCODER, ids, views=0)
    assert "raypi extract" in str(error.value)
    assert store.corrupt_shards(out, ENCODER) == [truncated]  # footers only
    assert sorted(store.corrupt_shards(out, ENCODER, full=True)) == sorted([truncated, flipped])

    (summary,) = extract(demo, [ENCODER], out, batch_size=8, verify=True)
    assert summary.rows_written == 16 and summary.rows_total == len(ids)
    after = _shards(out)
    assert truncated not in after and flipped not in after
    assert all(after[path] == before[path] for path in untouched)
    assert len(after) == len(before)
    assert torch.equal(load(out, ENCODER, ids, views=0), reference)


def test_shard_error_survives_pickling():
    import pickle

    from raypi.features.store import ShardError

    error = pickle.loads(pickle.dumps(ShardError("s3://b/part-1.parquet", "truncated")))
    assert isinstance(error, ShardError) and error.path == "s3://b/part-1.parquet"
    assert "corrupt feature shard s3://b/part-1.parquet (truncated)" in str(error)
