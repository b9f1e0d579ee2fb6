"""Feature store schema, token reductions and the reader, on hand-written stores (no Ray)."""

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from raypi.features import StoreError, load, load_text, read_manifest, schema, store
from raypi.features._tokens import reduce_tokens, reduced_shape

SHAPE = (5, 4)


def write_image_store(
    root, encoder="enc", ids=("a", "b", "c"), views=(0, 1), dtype="fp16", shards=2, **manifest
):
    """Write a store whose token values encode (image index, view) so results are checkable."""
    rows = [(i, image_id, view) for i, image_id in enumerate(ids) for view in views]
    for part in np.array_split(np.arange(len(rows)), shards):
        chunk = [rows[k] for k in part]
        tokens = torch.stack([token_value(i, v) for i, _, v in chunk])
        table = schema.image_table(
            [r[1] for r in chunk], np.array([r[2] for r in chunk]), tokens, dtype
        )
        store.write_shard(root, encoder, table)
    store.write_manifest(
        root,
        encoder,
        {
            "format": store.FORMAT,
            "encoder": encoder,
            "kind": "image",
            "dtype": dtype,
            "token_shape": list(SHAPE),
            "views": list(views),
            "skipped": [],
            **manifest,
        },
    )


def token_value(index, view):
    return torch.arange(np.prod(SHAPE), dtype=torch.float32).reshape(SHAPE) / 8 + 10 * index + view


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp32"])
def test_round_trip_all_dtypes_in_caller_order(tmp_path, dtype):
    write_image_store(str(tmp_path), dtype=dtype)
    tokens = load(str(tmp_path), "enc", ["c", "a"])
    assert tokens.dtype == schema.DTYPES[dtype].torch
    assert tokens.shape == (2, 2, *SHAPE)
    expected = torch.stack([torch.stack([token_value(i, v) for v in (0, 1)]) for i in (2, 0)])
    assert torch.equal(tokens.float(), expected.to(tokens.dtype).float())


def test_views_selection_duplicates_and_dtype(tmp_path):
    write_image_store(str(tmp_path))
    one = load(str(tmp_path), "enc", ["b", "a", "b"], views=1, dtype=torch.float32)
    assert one.shape == (3, *SHAPE) and one.dtype == torch.float32
    assert torch.equal(one[0], token_value(1, 1)) and torch.equal(one[2], one[0])
    listed = load(str(tmp_path), "enc", ["a"], views=[1, 0])
    assert torch.equal(listed[0, 0].float(), token_value(0, 1))


def test_missing_rows_views_and_kind_are_refused(tmp_path):
    root = str(tmp_path)
    write_image_store(root, skipped=[{"image_id": "zz", "reason": "undecodable image"}])
    with pytest.raises(StoreError, match=r"lacks rows for 2 of 3.*zz \(undecodable image\)"):
        load(root, "enc", ["a", "zz", "yy"])
    with pytest.raises(StoreError, match=r"missing views \[2\]"):
        load(root, "enc", ["a"], views=[0, 2])
    with pytest.raises(StoreError, match="holds image features; asked for text"):
        load_text(root, "enc", ["a"])
    with pytest.raises(
        StoreError, match="no features of encoder 'other'.*encoders there: \\['enc'\\]"
    ):
        load(root, "other", ["a"])


def test_incomplete_store_and_mismatched_shard_are_refused(tmp_path):
    root = str(tmp_path)
    write_image_store(root, views=(0,))
    manifest = read_manifest(root, "enc")
    store.write_manifest(root, "enc", {**manifest, "views": []})
    with pytest.raises(StoreError, match="no completed extraction"):
        load(root, "enc", ["a"])
    store.write_manifest(root, "enc", {**manifest, "token_shape": [5, 2], "dtype": "fp32"})
    with pytest.raises(StoreError, match="manifest says"):
        load(root, "enc", ["a"])


def test_late_duplicate_shards_are_dropped(tmp_path):
    root = str(tmp_path)
    write_image_store(root, ids=("a", "b"), views=(0,), shards=2)
    late = schema.image_table(
        ["b", "a"], np.array([0, 0]), torch.stack([token_value(1, 0), token_value(0, 0)]), "fp16"
    )
    store.write_shard(root, "enc", late)
    assert torch.equal(
        load(root, "enc", ["a", "b"], views=0).float(),
        torch.stack([token_value(0, 0), token_value(1, 0)]).half().float(),
    )
    assert store.drop_duplicate_shards(root, "enc", schema.IMAGE_KEYS) >= 1
    index = store.read_index(root, "enc", schema.IMAGE_KEYS)
    assert sorted(index["image_id"]) == ["a", "b"]  # which copy survives does not matter
    assert torch.equal(
        load(root, "enc", ["a", "b"], views=0).float(),
        torch.stack([token_value(0, 0), token_value(1, 0)]).half().float(),
    )


def test_temporaries_are_invisible_and_shards_self_describing(tmp_path):
    root = str(tmp_path)
    write_image_store(root, shards=1)
    folder = tmp_path / "enc"
    (folder / "part-dead.parquet.tmp-123").write_bytes(b"half a shard")
    assert len(store.list_shards(root, "enc")) == 1
    assert store.remove_temporaries(root, "enc") == 1
    shard = pq.ParquetFile(store.list_shards(root, "enc")[0])
    assert schema.shard_layout(shard.schema_arrow) == (SHAPE, "fp16")
    assert shard.schema_arrow.field("tokens").type.byte_width == 2 * np.prod(SHAPE)


def test_text_store_lengths_and_missing_reports(tmp_path):
    root = str(tmp_path)
    tokens = torch.randn(2, 6, 3)
    store.write_shard(root, "txt", schema.text_table(["a", "b"], tokens, np.array([6, 2]), "fp32"))
    store.write_manifest(
        root,
        "txt",
        {
            "format": store.FORMAT,
            "encoder": "txt",
            "kind": "text",
            "dtype": "fp32",
            "token_shape": [6, 3],
            "views": [0],
            "skipped": [{"image_id": "n", "reason": "no report (null or empty)"}],
        },
    )
    values, lengths = load_text(root, "txt", ["b", "a"])
    assert torch.equal(values, tokens[[1, 0]]) and lengths.tolist() == [2, 6]
    with pytest.raises(StoreError, match=r"n \(no report"):
        load_text(root, "txt", ["a", "n"])
    values, lengths = load_text(root, "txt", ["n", "a"], allow_missing=True)
    assert lengths.tolist() == [0, 6] and not values[0].any()


def test_identity_mismatches_name_each_field():
    stored = {"format": 1, "encoder": "e", "dtype": "fp16", "token_shape": [5, 4], "pool": 1}
    wanted = {**stored, "token_shape": (5, 4), "dtype": "fp32"}
    assert store.identity_mismatches(stored, wanted) == ["dtype: store has 'fp16', run asks 'fp32'"]


def test_token_reductions():
    tokens = torch.randn(2, 1 + 37 * 37, 8)
    pooled = reduce_tokens(tokens, "all", 2, cls=True)
    assert pooled.shape == (2, 1 + 19 * 19, 8)
    assert reduced_shape((1 + 37 * 37, 8), "all", 2, True) == (1 + 19 * 19, 8)
    assert torch.equal(pooled[:, 0], tokens[:, 0])
    grid = tokens[:, 1:].reshape(2, 37, 37, 8)
    assert torch.allclose(pooled[:, 1], grid[:, :2, :2].mean(dim=(1, 2)), atol=1e-6)
    assert torch.allclose(pooled[:, 19], grid[:, :2, 36].mean(dim=1), atol=1e-6)  # edge window
    assert torch.equal(reduce_tokens(tokens, "cls", 1, cls=True), tokens[:, :1])
    assert torch.allclose(
        reduce_tokens(tokens, "mean", 1, cls=True)[:, 0], tokens[:, 1:].mean(dim=1)
    )
    with pytest.raises(ValueError, match="no CLS token"):
        reduce_tokens(torch.randn(1, 49, 8), "cls", 1, cls=False)
    with pytest.raises(ValueError, match="only to tokens='all'"):
        reduced_shape((49, 8), "mean", 2, False)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"views": -1}, "views must be >= 0"),
        ({"dtype": "int8"}, "unknown feature dtype"),
        ({"max_text_length": 1}, "max_text_length"),
        ({"tokens": "max"}, "tokens must be one of"),
    ],
)
def test_extract_rejects_bad_options_before_any_work(tmp_path, options, message):
    from raypi.features import extract

    with pytest.raises(ValueError, match=message):
        extract(str(tmp_path / "no-dataset"), ["tiny_vit"], str(tmp_path / "out"), **options)


def test_actor_pool_leaves_cpus_for_decoding():
    from raypi.encoders import ResourceHint
    from raypi.features import ExtractOptions
    from raypi.features._pipeline import size_pool

    small = ResourceHint(gpu_memory_gb=4.0, batch_size=64)
    cpu = size_pool(2, 0, small, ExtractOptions())
    assert (cpu.size, cpu.num_cpus, cpu.num_gpus, cpu.device, cpu.threads) == (1, 1.0, 0, "cpu", 2)
    gpu = size_pool(8, 4, small, ExtractOptions(gpu_memory_gb=16))
    # 4 GB of 16 GB: a quarter GPU under raypi.cluster's one share rule -> 4 actors per GPU.
    assert (gpu.size, gpu.num_gpus, gpu.device) == (16, 0.25, "cuda")
    assert gpu.size * gpu.num_cpus <= 8 / 2
    big = size_pool(8, 4, ResourceHint(24.0, 64, needs_big_gpu=True), ExtractOptions())
    assert (big.size, big.num_gpus, big.custom) == (4, 1.0, {})
    # With 40 GB+ nodes declaring big_gpu, only they take RAD-DINO-like encoders.
    big_node = size_pool(
        8, 4, ResourceHint(24.0, 64, needs_big_gpu=True), ExtractOptions(), big_gpus=2
    )
    assert (big_node.size, big_node.num_gpus, big_node.custom) == (2, 1.0, {"big_gpu": 1.0})
    assert size_pool(8, 4, small, ExtractOptions(), big_gpus=2).custom == {}
