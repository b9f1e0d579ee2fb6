"""Hold a pack to the host memory it asked Ray for: Ray's ``memory`` resource is only logical.

A pack's budget is its Ray ``memory`` request. It is checked after the working set is loaded
(its tensors' exact bytes, and the growth of this process's resident memory since the pack
began) and again after every epoch (the resident growth, sampled), so a pack that outgrows its
request stops with ``PackMemoryError`` — recorded as its trials' reason — instead of pushing
its node into the OOM killer, which would take other trials, or Ray itself, with it. Resident
memory is read from ``/proc/self/statm`` (Linux); elsewhere only the working set is checked.
"""

from __future__ import annotations

import os


class PackMemoryError(MemoryError):
    """A pack needed more host memory than it asked Ray for."""


def resident_bytes() -> int | None:
    """Return this process's resident memory in bytes; None where unknown."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class MemoryBudget:
    """The host memory one pack may use, from when it starts."""

    def __init__(self, limit_bytes: float | None, what: str) -> None:
        """Start counting.

        Args:
            limit_bytes: The budget (the pack's Ray ``memory`` request); None for no limit.
            what: What is limited, for the error (e.g. ``pack demo_prognostic/tiny_vit/…``).
        """
        self.limit, self.what, self.base = limit_bytes, what, resident_bytes()

    def check(self, known_bytes: int = 0) -> None:
        """Raise ``PackMemoryError`` if the pack holds more than its budget.

        Args:
            known_bytes: Bytes the pack is known to hold (its working set's tensors).
        """
        if self.limit is None:
            return
        now = resident_bytes()
        grown = 0 if now is None or self.base is None else now - self.base
        held = max(grown, known_bytes)
        if held > self.limit:
            raise PackMemoryError(
                f"{self.what} holds {held / 1e9:.3g} GB of host memory, over the "
                f"{self.limit / 1e9:.3g} GB it asked Ray for; give it more (--pack-memory-gb, "
                "or resource_overrides: {ENCODER: {host_memory_gb: …}}) or split it "
                "(--max-pack-gb)"
            )

    def watching(self, on_epoch):
        """Return ``on_epoch`` that also checks the budget after every epoch."""

        def checked(row: dict) -> None:
            on_epoch(row)
            self.check()

        return checked
