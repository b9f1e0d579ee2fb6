"""A Tune callback that records a trial once it has failed for good (retries exhausted)."""

from __future__ import annotations

import os

from ray import tune

from raypi.sweep import results

_MAX_ERROR = 500


def error_text(error, attempts: int) -> str:
    """Return a short, report-free description of a trial's last error.

    Trials never read report text (see ``raypi.sweep._inputs``), so an exception raised in
    one cannot hold any; the message is still cut to its first line and 500 characters.

    Args:
        error: The pickled exception (Ray's wrapper or the original) or Tune's error text.
        attempts: How many times the trial ran.

    Returns:
        ``"<ExceptionType>: <first line> (N attempts)"``.
    """
    cause = getattr(error, "cause", None) or error
    if isinstance(cause, BaseException):
        lines = str(cause).strip().splitlines() or [""]
        message = f"{type(cause).__name__}: {lines[0]}"
    else:
        lines = [line for line in str(cause or "unknown error").splitlines() if line.strip()]
        message = lines[-1] if lines else "unknown error"
    return f"{message[:_MAX_ERROR]} ({attempts} attempt{'s' if attempts != 1 else ''})"


class FailureRecorder(tune.Callback):
    """Write a ``failed`` trials row when Tune gives a trial up."""

    def __init__(self, plan) -> None:
        self.plan = plan

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        """Record the trial with its error (called after the last retry failed)."""
        from raypi.sweep.trainable import resolve_trial

        config = resolve_trial(trial.config, self.plan)
        error = _last_error(trial)
        row = results.trial_row(
            self.plan.sweep,
            config.to_dict(),
            results.FAILED,
            error=error_text(error, int(trial.num_failures)),
            finished_at=results.now(),
        )
        results.write_trial(self.plan.results, row)


def _last_error(trial):
    """Return the trial's last exception, read from the local file Tune has just written.

    Tune's storage copy may not be synced yet when the callback runs, so the local pickled
    error comes first, then the local text trace, then the storage copies.
    """
    import cloudpickle

    for path, load in ((trial.pickled_error_file, cloudpickle.load), (trial.error_file, None)):
        if path and os.path.exists(path):
            with open(path, "rb") as handle:
                try:
                    return load(handle) if load else handle.read().decode(errors="replace")
                except Exception:  # noqa: BLE001 - an unreadable pickle falls back to text
                    continue
    return trial.get_pickled_error() or trial.get_error()
