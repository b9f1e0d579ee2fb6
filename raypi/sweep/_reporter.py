"""Members' epochs to Tune as they happen, and to each member's TensorBoard and trackers."""

from __future__ import annotations

import time

REPORT_EVERY_S = 2.0
"""Least seconds between two results sent to Tune from one trial or pack: each result costs
Tune tens of milliseconds, which tiny members would otherwise spend many times per second."""


class Reporter:
    """Sends members' epochs to Tune as they happen (its table, schedulers).

    At most one result every ``REPORT_EVERY_S`` goes to Tune, and every epoch to the member's
    log (its TensorBoard and tracker runs, ``sweep.trackers.member_log``).
    """

    def __init__(
        self, limit: int | None, members: int, every_s: float = REPORT_EVERY_S, budget=None
    ) -> None:
        self.limit, self.members, self.done, self.every_s = limit, members, 0, every_s
        self.budget = budget  # a pack's MemoryBudget, checked after every epoch
        self.best = {"val_auc": float("-inf"), "select_auc": float("-inf")}
        self.last, self.pending, self.seconds = float("-inf"), None, 0.0

    def member_done(self) -> None:
        """Count a finished member."""
        self.done += 1

    def finish(self) -> None:
        """Send the latest result not sent yet (every trial ends with its final state)."""
        from ray import tune

        if self.pending is not None:
            tune.report(self.pending)
            self.pending = None

    def epoch(self, epochs: int, board=None):
        """Return the ``on_epoch`` callback of a member that trains ``epochs`` epochs.

        Args:
            epochs: The member's epochs (``limit`` of them, evenly spaced, may be sent).
            board: The member's log (``sweep.trackers.MemberLog``): every epoch goes to it.

        Returns:
            The callback; the time it spends is counted in ``seconds``.
        """
        from ray import tune

        shown = set(range(1, epochs + 1))
        if self.limit is not None and self.limit < epochs:
            shown = {epochs - round(i * (epochs - 1) / max(1, self.limit - 1)) for i in
                     range(self.limit)} if self.limit > 1 else {epochs}  # fmt: skip

        def report(row: dict) -> None:
            started = time.perf_counter()
            if board is not None:
                for name in ("loss", "ce_loss", "kd_loss", "val_auc", "val_auprc", "select_auc"):
                    value = _float(row.get(name))
                    if value == value:  # NaN (e.g. kd_loss of a non-student) is not a point
                        board.add_scalar(name, value, int(row["epoch"]))
            for name in self.best:
                value = _float(row.get(name))
                self.best[name] = max(self.best[name], value) if value == value else self.best[name]
            if int(row["epoch"]) in shown:
                self.pending = self._result(row)
                if started - self.last >= self.every_s:
                    tune.report(self.pending)
                    self.pending, self.last = None, time.perf_counter()
            self.seconds += time.perf_counter() - started

        return report if self.budget is None else self.budget.watching(report)

    def _result(self, row: dict) -> dict:
        best = {f"best_{k}": v if v > float("-inf") else float("nan") for k, v in self.best.items()}
        return {"epoch": int(row["epoch"]), "loss": _float(row.get("loss")),
                "val_auc": _float(row.get("val_auc")), "val_auprc": _float(row.get("val_auprc")),
                "members_done": self.done, "members": self.members, **best}  # fmt: skip


def _float(value) -> float:
    return float("nan") if value is None else float(value)
