"""Paths that may be local or ``s3://``: one filesystem layer for every stage.

Local writes are atomic (temporary name, then rename), so a killed job never leaves a
half-written file visible; S3 objects are written once, whole, which is atomic already.
A custom S3 endpoint (e.g. a local test server) is taken from ``RAYPI_S3_ENDPOINT`` or
``AWS_ENDPOINT_URL``.

Object stores come and go: every ``s3://`` operation that fails for a network or throttling
reason is retried with exponential backoff for up to ``RAYPI_STORAGE_RETRY_S`` seconds (120 by
default), then raises ``StorageUnavailableError``. A local volume that fills up raises
``StorageFullError`` and leaves no temporary behind. Both say that a rerun continues.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

RETRY_ENV = "RAYPI_STORAGE_RETRY_S"
"""Environment variable: seconds an ``s3://`` operation is retried before giving up."""
DEFAULT_RETRY_S = 120.0
_TRANSIENT = ("NETWORK_CONNECTION", "curlCode", "SERVICE_UNAVAILABLE", "SLOW_DOWN", "THROTTL",
              "INTERNAL_FAILURE", "REQUEST_TIMEOUT", "HTTP response code: 5")  # fmt: skip
"""Markers of AWS SDK errors that a later try may not meet (pyarrow raises them as OSError)."""


class StorageUnavailableError(OSError):
    """The object store did not answer within the retry budget."""


class StorageFullError(OSError):
    """A local volume has no space left for a write (``errno`` is ``ENOSPC``)."""

    errno = errno.ENOSPC


def retry_budget_s() -> float:
    """Return the seconds an ``s3://`` operation is retried (``RAYPI_STORAGE_RETRY_S``)."""
    return float(os.environ.get(RETRY_ENV) or DEFAULT_RETRY_S)


def is_transient(error: BaseException) -> bool:
    """Return whether a storage error is one a later try may not meet (network, throttling)."""
    return isinstance(error, OSError) and any(mark in str(error) for mark in _TRANSIENT)


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


def retrying(path: str | os.PathLike, action: Callable[[], Any]) -> Any:
    """Run ``action`` on ``path``; for a URI, retry transient errors within the budget.

    Args:
        path: The file or folder the action touches (local paths are never retried).
        action: The operation, without arguments.

    Returns:
        What ``action`` returns.

    Raises:
        StorageUnavailableError: The store kept failing for ``retry_budget_s()`` seconds.
    """
    if not is_remote(path):
        return action()
    budget, started, delay, tries = retry_budget_s(), time.monotonic(), 0.5, 0
    while True:
        try:
            return action()
        except OSError as error:
            tries += 1
            waited = time.monotonic() - started
            if not is_transient(error):
                raise
            if waited + delay > budget:
                where = f" at {_s3_endpoint()}" if _s3_endpoint() else ""
                raise StorageUnavailableError(
                    f"{path}: the object store{where} did not answer for {waited:.0f} s "
                    f"({tries} tries, {RETRY_ENV}={budget:g}): {_first_line(error)}. Files "
                    "there are whole or absent, never partial: rerun the same command to "
                    "continue once the store is back."
                ) from error
            if tries == 1:
                log.warning("%s: object store unreachable, retrying for up to %g s", path, budget)
            time.sleep(delay)
            delay = min(2 * delay, 10.0)


def _write_local(inner: str, write: Callable[[str], None]) -> None:
    """Write a local file through a temporary name, so it appears whole or not at all."""
    Path(inner).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{inner}.tmp-{uuid.uuid4().hex}"
    try:
        write(tmp)
        os.replace(tmp, inner)
    except OSError as error:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        if error.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(error):
            raise _full_error(inner) from error
        raise


def _full_error(inner: str) -> StorageFullError:
    folder = Path(inner).parent
    while not folder.exists():
        folder = folder.parent
    usage = shutil.disk_usage(folder)
    return StorageFullError(
        f"no space left on the volume of {folder} ({usage.free / 1e6:.1f} MB free of "
        f"{usage.total / 1e6:.1f} MB) while writing {Path(inner).name}; nothing partial was "
        "kept: free space and rerun the same command to continue",
    )


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
    return retrying(path, lambda: fs.get_file_info(inner).type != pafs.FileType.NotFound)


def makedirs(path: str | os.PathLike) -> None:
    """Create a folder and its parents (a no-op on S3, which has no folders)."""
    fs, inner = filesystem(path)
    retrying(path, lambda: fs.create_dir(inner, recursive=True))


def listdir(path: str | os.PathLike) -> list[str]:
    """Return the sorted base names of the entries directly under ``path`` ([] if absent)."""
    fs, inner = filesystem(path)
    selector = pafs.FileSelector(inner, allow_not_found=True, recursive=False)
    return sorted(info.base_name for info in retrying(path, lambda: fs.get_file_info(selector)))


def read_bytes(path: str | os.PathLike) -> bytes:
    """Return the whole content of a file."""
    fs, inner = filesystem(path)

    def read() -> bytes:
        with fs.open_input_stream(inner) as stream:
            return stream.read()

    return retrying(path, read)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write a whole file atomically (parents are created).

    Args:
        path: Destination, local or ``s3://``.
        data: The file's content.
    """
    fs, inner = filesystem(path)
    if isinstance(fs, pafs.LocalFileSystem):
        _write_local(inner, lambda tmp: Path(tmp).write_bytes(data))
        return

    def write() -> None:
        with fs.open_output_stream(inner) as stream:
            stream.write(data)

    retrying(path, write)


def remove(path: str | os.PathLike) -> None:
    """Delete a file if it exists."""
    fs, inner = filesystem(path)

    def delete() -> None:
        if fs.get_file_info(inner).type == pafs.FileType.File:
            fs.delete_file(inner)

    retrying(path, delete)


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
    return retrying(
        path, lambda: pq.read_table(inner, filesystem=fs, columns=columns, memory_map=False)
    )


def write_parquet(table: pa.Table, path: str | os.PathLike, **kwargs: Any) -> None:
    """Write an Arrow table to one Parquet file, atomically.

    Args:
        table: The rows to write.
        path: Destination file, local or ``s3://``.
        **kwargs: Passed to ``pyarrow.parquet.write_table``.
    """
    fs, inner = filesystem(path)
    if isinstance(fs, pafs.LocalFileSystem):
        _write_local(inner, lambda tmp: pq.write_table(table, tmp, **kwargs))
        return
    retrying(path, lambda: pq.write_table(table, inner, filesystem=fs, **kwargs))
