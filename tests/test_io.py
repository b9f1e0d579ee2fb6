import pyarrow as pa
import pytest

from raypi import io


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "store")
    request.getfixturevalue("s3_server")
    return f"s3://raypi-test/io-{tmp_path.name}"


def test_parquet_json_bytes_round_trip(root):
    table = pa.table({"image_id": ["a", "b"], "label": [0, 1]})
    io.write_parquet(table, io.join(root, "sub", "t.parquet"))
    io.write_json(io.join(root, "m.json"), {"rows": 2})
    assert io.read_parquet(io.join(root, "sub", "t.parquet")).equals(table)
    assert io.read_json(io.join(root, "m.json")) == {"rows": 2}
    assert io.exists(io.join(root, "m.json"))
    assert not io.exists(io.join(root, "missing.json"))
    assert io.listdir(root) == ["m.json", "sub"]
    io.remove(io.join(root, "m.json"))
    assert not io.exists(io.join(root, "m.json"))


def test_local_write_leaves_no_temporary_files(tmp_path):
    io.write_bytes(tmp_path / "a.bin", b"xyz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]
    assert io.read_bytes(tmp_path / "a.bin") == b"xyz"


def test_join_handles_uris_and_slashes():
    assert io.join("s3://b/x/", "/y", "z.parquet") == "s3://b/x/y/z.parquet"
