"""What a run of a sweep did: counts, the per task × method table and the failures' reasons."""

from __future__ import annotations

from dataclasses import dataclass, field

from raypi.sweep import results


@dataclass
class SweepOutcome:
    """What a run of a sweep did."""

    name: str
    """Sweep name."""
    results: str
    """Results folder."""
    total: int = 0
    """Trials in the sweep."""
    skipped: int = 0
    """Trials already recorded ok before this run."""
    ran: dict[str, int] = field(default_factory=dict)
    """Trials launched per stage in this run."""
    ok: int = 0
    """Trials recorded ok after this run."""
    failed: int = 0
    """Trials recorded failed after this run."""
    table: str = ""
    """Per task × method: trials ok and failed, configurations, and the best configuration's
    seed-mean validation AUC (last epoch) — never a mean across configurations."""
    errors: str = ""
    """The distinct reasons of failed trials, with their counts (the commonest five)."""

    def summary(self) -> str:
        """Return a short human summary with where the results are."""
        return (
            (self.table + "\n" if self.table else "")
            + (self.errors + "\n" if self.errors else "")
            + f"sweep {self.name}: {self.ok}/{self.total} trials ok, {self.failed} failed "
            f"(this run: {self.ran.get('stage1', 0)} stage-1 models, "
            f"{self.ran.get('stage2', 0)} students; {self.skipped} already done)\n"
            f"results: {results.trials_path(self.results)}\n"
            f"         {results.epochs_path(self.results)}"
        )


def summary_table(trials) -> str:
    """Return per task × method: trials ok and failed, configurations, best seed-mean AUC.

    The AUC is the last-epoch validation AUC averaged over the seeds of one configuration
    (``config_key``) only, then the best configuration's: never a mean across settings.
    """
    if trials.empty:
        return ""
    ok = trials[trials["status"] == results.OK]
    means = ok.groupby(["task", "method", "config_key"])["auc_final"].mean()
    best = means.groupby(["task", "method"]).max().rename("best_config_val_auc")
    configs = ok.groupby(["task", "method"])["config_key"].nunique().rename("configs")
    counts = trials.assign(ok=trials["status"] == results.OK,
                           failed=trials["status"] == results.FAILED)  # fmt: skip
    table = counts.groupby(["task", "method"])[["ok", "failed"]].sum().join(configs).join(best)
    return table.fillna({"configs": 0}).round(3).reset_index().to_string(index=False)


def failure_reasons(trials, most: int = 5) -> str:
    """Return the commonest reasons of failed trials, one line each with its count."""
    failed = trials.loc[trials["status"] == results.FAILED, "error"].fillna("unknown error")
    if failed.empty:
        return ""
    counts = failed.value_counts()
    lines = [f"  {count} × {reason}" for reason, count in counts.head(most).items()]
    more = len(counts) - most
    return "\n".join(["failed trials:", *lines] + ([f"  … and {more} more"] if more > 0 else []))
