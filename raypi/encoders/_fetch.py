"""Weights given as ``s3://``: fetched once per node into a local cache, checked against S3."""

from __future__ import annotations

from pathlib import Path

from raypi import io
from raypi.encoders._errors import WeightsError


def fetch_weights(path: str | None, cache: Path | None = None) -> str | None:
    """Return a local copy of weights given as ``s3://…`` (local paths are returned as given).

    Each node downloads a file or folder once into ``$RAYPI_HOME/cache/weights`` (one folder
    per URI, under a lock, so the actors of a node share one download); every file's size is
    checked against the object store, and a copy whose objects changed since is fetched again.
    The loaded module is then checked against the driver's build (its weights fingerprint).

    Args:
        path: Weights file or folder, local or ``s3://``; None for none.
        cache: Cache folder (default ``$RAYPI_HOME/cache/weights``).

    Returns:
        A local path (or None).

    Raises:
        WeightsError: Nothing at ``path``, or a download that does not match its source.
    """
    if path is None or not io.is_remote(path):
        return path
    import fcntl
    import hashlib
    import json

    from raypi.paths import home

    fs, inner = io.filesystem(path)
    listing = _remote_files(path, fs, inner)
    folder = (cache or home() / "cache" / "weights") / hashlib.sha256(path.encode()).hexdigest()[
        :16
    ]
    folder.mkdir(parents=True, exist_ok=True)
    target, record = folder / Path(inner.rstrip("/")).name, folder / "source.json"
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if record.is_file() and json.loads(record.read_text()) == listing:
            return str(target)
        record.unlink(missing_ok=True)
        for relative in listing["files"]:
            source = f"{inner.rstrip('/')}/{relative}" if relative else inner
            local = target / relative if relative else target
            local.parent.mkdir(parents=True, exist_ok=True)
            io.retrying(path, lambda s=source, d=local: _download(fs, s, d))
        _check_sizes(path, target, listing["files"])
        record.write_text(json.dumps(listing))
    return str(target)


def _remote_files(path: str, fs, inner: str) -> dict:
    """Return ``{"source", "files": {relative path: [size, mtime]}}`` of a remote file/folder."""
    import pyarrow.fs as pafs

    info = io.retrying(path, lambda: fs.get_file_info(inner))
    if info.type == pafs.FileType.File:
        return {"source": path, "files": {"": [info.size, str(info.mtime)]}}
    selector = pafs.FileSelector(inner.rstrip("/"), recursive=True, allow_not_found=True)
    found = [i for i in io.retrying(path, lambda: fs.get_file_info(selector)) if i.is_file]
    if not found:
        raise WeightsError(f"weights not found at {path} (no object and no objects under it)")
    start = len(inner.rstrip("/")) + 1
    return {"source": path, "files": {i.path[start:]: [i.size, str(i.mtime)] for i in found}}


def _download(fs, source: str, local: Path) -> None:
    """Stream one object to ``local`` through a temporary name (a partial file is never kept)."""
    partial = local.with_name(local.name + ".partial")
    with fs.open_input_stream(source) as reader, open(partial, "wb") as writer:
        while chunk := reader.read(16 * 2**20):
            writer.write(chunk)
    partial.replace(local)


def _check_sizes(path: str, target: Path, files: dict) -> None:
    """Raise if a downloaded file's size differs from its object's."""
    for relative, (size, _) in files.items():
        local = target / relative if relative else target
        if local.stat().st_size != size:
            raise WeightsError(
                f"{path}: downloaded {relative or local.name} has {local.stat().st_size} bytes, "
                f"the object store says {size}"
            )
