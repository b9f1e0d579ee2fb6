"""One driver per results folder: a lock file naming its holder, taken over when stale.

Two drivers writing one results folder would train the same trials twice and race on the
merged tables, so the second one refuses, naming the first (host, pid, age, last heartbeat).
A lock is stale — and taken over, with a warning — when its holder ran on this host and that
process is gone (a killed driver), or when its heartbeat (rewritten every
``HEARTBEAT_S``) is older than ``STALE_S`` (a driver on another host that died). Local folders
are locked by exclusive file creation; on S3 the lock is written then read back, which
narrows but does not close the window for two drivers starting within the same second.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from raypi import io

log = logging.getLogger(__name__)

LOCK_FILE = "driver.lock"
HEARTBEAT_S = 20.0
STALE_S = 180.0


class SweepLockedError(RuntimeError):
    """Another live driver is writing the results folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def holder_text(holder: dict, now: float | None = None) -> str:
    """Return e.g. ``pid 123 on host-a, started 5 min ago, heartbeat 12 s ago``."""
    now = time.time() if now is None else now
    started = now - float(holder.get("started_at", now))
    beat = now - float(holder.get("heartbeat_at", now))
    return (
        f"pid {holder.get('pid')} on {holder.get('host')}, started {started / 60:.1f} min ago, "
        f"last heartbeat {beat:.0f} s ago"
    )


def stale_reason(holder: dict, now: float | None = None) -> str | None:
    """Return why a lock's holder is gone, or None when it may still be running."""
    now = time.time() if now is None else now
    if holder.get("host") == socket.gethostname() and not _alive(int(holder.get("pid", -1))):
        return "its process is gone"
    if now - float(holder.get("heartbeat_at", 0)) > STALE_S:
        return f"no heartbeat for more than {STALE_S:.0f} s"
    return None


class DriverLock:
    """Hold ``<results>/driver.lock`` while a driver writes the folder (a context manager)."""

    def __init__(self, results: str):
        self.path = io.join(results, LOCK_FILE)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def _record(self, started: float) -> dict:
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": started,
            "heartbeat_at": time.time(),
            "token": self.token,
        }

    def acquire(self) -> DriverLock:
        """Take the lock, or raise ``SweepLockedError`` naming its live holder."""
        if io.exists(self.path):
            try:
                holder = io.read_json(self.path)
            except ValueError:  # a half-written lock of a killed driver
                holder = {}
            reason = stale_reason(holder) if holder else "it is unreadable"
            if reason is None:
                raise SweepLockedError(
                    f"{os.path.dirname(self.path)} is being written by another sweep driver "
                    f"({holder_text(holder)}). Wait for it to finish; if that driver is gone "
                    f"for good, delete {self.path}"
                )
            log.warning("taking over the stale lock %s (%s): %s", self.path, reason, holder)
            io.remove(self.path)
        self._started = time.time()
        self._create(self._record(self._started))
        self._beat = threading.Thread(target=self._heartbeat, name="raypi-lock", daemon=True)
        self._beat.start()
        return self

    def _create(self, record: dict) -> None:
        import json

        if io.is_remote(self.path):
            io.write_json(self.path, record)
            if io.read_json(self.path).get("token") != self.token:
                raise SweepLockedError(f"another driver took {self.path} at the same time")
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            raise SweepLockedError(f"another driver took {self.path} at the same time") from None
        with os.fdopen(fd, "w") as handle:
            json.dump(record, handle)

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                io.write_json(self.path, self._record(self._started))
            except OSError as error:  # storage briefly away: the next beat retries
                log.warning("could not refresh %s: %s", self.path, error)

    def release(self) -> None:
        """Stop the heartbeat and delete the lock if it is still this driver's."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        try:
            if io.exists(self.path) and io.read_json(self.path).get("token") == self.token:
                io.remove(self.path)
        except (OSError, ValueError) as error:
            log.warning("could not remove %s: %s", self.path, error)

    def __enter__(self) -> DriverLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
