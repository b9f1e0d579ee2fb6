"""One member's TensorBoard event file, under the results folder whether local or ``s3://``."""

from __future__ import annotations

import os
import shutil
import tempfile

from raypi import io


def board_dir(results_dir: str, trial_key: str) -> str:
    """Return the folder of a member's TensorBoard events: ``<results>/tensorboard/<key>``."""
    return io.join(results_dir, "tensorboard", trial_key)


class MemberBoard:
    """Every epoch's scalars of one member, in one TensorBoard event file.

    A local results folder gets the file directly (TensorBoard shows it as it grows). For an
    ``s3://`` results folder the file is written to a local temporary folder and copied through
    ``raypi.io`` (its endpoint, credentials and retries) when the member ends. Event files of
    an earlier attempt of the member (one that was never recorded ok) are removed first, so a
    retried member has one curve. Nothing here is optional: a failure to write is the
    member's failure, never a silently missing curve.
    """

    def __init__(self, results_dir: str, trial_key: str) -> None:
        from tensorboardX import SummaryWriter

        self.target = board_dir(results_dir, trial_key)
        for name in io.listdir(self.target):
            io.remove(io.join(self.target, name))
        self.remote = io.is_remote(self.target)
        self.local = tempfile.mkdtemp(prefix="raypi-board-") if self.remote else self.target
        self.writer = SummaryWriter(self.local)

    def add_scalar(self, name: str, value: float, step: int) -> None:
        """Write one scalar of one epoch."""
        self.writer.add_scalar(name, value, step)

    def finish(self, metrics: dict[str, float]) -> None:
        """Nothing more for TensorBoard: its curves are the epochs."""

    def close(self, ok: bool) -> None:
        """Close the event file; on S3, copy it under the results and drop the local copy."""
        self.writer.close()
        if not self.remote:
            return
        try:
            for name in sorted(os.listdir(self.local)):
                with open(os.path.join(self.local, name), "rb") as handle:
                    io.write_bytes(io.join(self.target, name), handle.read())
        finally:
            shutil.rmtree(self.local, ignore_errors=True)
