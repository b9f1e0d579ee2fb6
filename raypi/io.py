"""Paths that may be local or ``s3://``: one filesystem layer for every stage.

Local writes are atomic (temporary name, then rename), so a killed job never leaves a
half-written file visible; S3 objects are written once, whole, which is atomic already.
A custom S3 endpoint (e.g. a local test server) is taken from ``RAYPI_S3_ENDPOINT`` or
``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq


def is_remote(path: str | os.PathLike) -> bool:
    """Return whether ``path`` is a URI (``s3://…``) rather than a local path."""
    return "://" in str(path)


def _s3_endpoint() -> str | None:
    return os.environ.get("RAYPI_S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL")


def filesystem(path: str | os.PathLike) -> tuple[pafs.FileSystem, str]:
    """Return the pyarrow filesystem holding ``path`` and the path within it.

    Args:
        path: A local path or an ``s3://bucket/key`` URI.

    Returns:
        ``(filesystem, path_within_filesystem)``.
    """
    path = str(path)
    if path.startswith("s3://"):
        endpoint = _s3_endpoint()
        kwargs: dict[str, Any] = {}
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            kwargs = {"endpoint_override": host or scheme, "scheme": scheme if host else "https"}
        region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
        if region:
            kwargs["region"] = region
        return pafs.S3FileSystem(**kwargs), path[len("s3://") :]
    if is_remote(path):
        return pafs.FileSystem.from_uri(path)
    return pafs.LocalFileSystem(), str(Path(path).absolute())


def fsspec_options() -> dict[str, Any]:
    """Return storage options for fsspec/s3fs users (pandas, Ray) honouring the endpoint."""
    endpoint = _s3_endpoint()
    return {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}


def join(base: str | os.PathLike, *parts: str) -> str:
    """Join path parts with ``/``, for local paths and URIs alike."""
    out = str(base).rstrip("/")
    for part in parts:
        out = f"{out}/{str(part).strip('/')}"
    return out


def exists(path: str | os.PathLike) -> bool:
    """Return whether a file or folder exists at ``path``."""
    fs, inner = filesystem(path)
    return fs.get_file_info(inner).type != pafs.FileType.NotFound


def makedirs(path: str | os.PathLike) -> None:
    """Create a folder and its parents (a no-op on S3, which has no folders)."""
    fs, inner = filesystem(path)
    fs.create_dir(inner, recursive=True)


def listdir(path: str | os.PathLike) -> list[str]:
    """Return the sorted base names of the entries directly under ``path`` ([] if absent)."""
    fs, inner = filesystem(path)
    selector = pafs.FileSelector(inner, allow_not_found=True, recursive=False)
    return sorted(info.base_name for info in fs.get_file_info(selector))


def read_bytes(path: str | os.PathLike) -> bytes:
    """Return the whole content of a file."""
    fs, inner = filesystem(path)
    with fs.open_input_stream(inner) as stream:
        return stream.read()


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write a whole file atomically (parents are created).

    Args:
        path: Destination, local or ``s3://``.
        data: The file's content.
    """
    fs, inner = filesystem(path)
    if isinstance(fs, pafs.LocalFileSystem):
        Path(inner).parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{inner}.tmp-{uuid.uuid4().hex}"
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, inner)
        return
    with fs.open_output_stream(inner) as stream:
        stream.write(data)


def remove(path: str | os.PathLike) -> None:
    """Delete a file if it exists."""
    fs, inner = filesystem(path)
    if fs.get_file_info(inner).type == pafs.FileType.File:
        fs.delete_file(inner)


def read_json(path: str | os.PathLike) -> Any:
    """Return the parsed JSON document at ``path``."""
    return json.loads(read_bytes(path))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    write_bytes(path, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())


def read_parquet(path: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
    """Read one Parquet file (or a folder of them) into an Arrow table.

    Args:
        path: File or folder, local or ``s3://``.
        columns: Columns to read; all when None.

    Returns:
        The table.
    """
    fs, inner = filesystem(path)
    return pq.read_table(inner, filesystem=fs, columns=columns, memory_map=False)


def write_parquet(table: pa.Table, path: str | os.PathLike, **kwargs: Any) -> None:
    """Write an Arrow table to one Parquet file, atomically.

    Args:
        table: The rows to write.
        path: Destination file, local or ``s3://``.
        **kwargs: Passed to ``pyarrow.parquet.write_table``.
    """
    fs, inner = filesystem(path)
    if isinstance(fs, pafs.LocalFileSystem):
        Path(inner).parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{inner}.tmp-{uuid.uuid4().hex}"
        pq.write_table(table, tmp, **kwargs)
        os.replace(tmp, inner)
        return
    pq.write_table(table, inner, filesystem=fs, **kwargs)
