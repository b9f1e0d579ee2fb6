"""Tune callbacks: record failed trials, stop when storage gives out, one live progress line."""

from __future__ import annotations

import os

from ray import tune
from ray.tune.stopper import Stopper

from raypi import io
from raypi.sweep import results

STORAGE_ERRORS = (io.StorageUnavailableError, io.StorageFullError)

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
        """Record the trial — or a pack's members not recorded ok — with its error.

        A trial stopped by its results storage is not recorded: that storage is what failed,
        and a rerun trains the trial again.
        """
        last = _last_error(trial)
        if storage_error(last) is not None:
            return
        error = error_text(last, int(trial.num_failures))
        recorded = results.statuses(self.plan.results) if "pack" in trial.config else {}
        for config in members(trial.config, self.plan):
            if recorded.get(config.trial_key) == results.OK:
                continue
            why = error
            if config.is_student and recorded.get(config.teacher_key) != results.OK:
                why = f"teacher {config.teacher_key} failed; student not trained"
            row = results.trial_row(
                self.plan.sweep, config.to_dict(), results.FAILED, error=why,
                finished_at=results.now(),
            )  # fmt: skip
            results.write_trial(self.plan.results, row)


def storage_error(error) -> str | None:
    """Return the message of a results-storage failure (full, or unreachable), else None."""
    cause = getattr(error, "cause", None) or error
    if isinstance(cause, STORAGE_ERRORS):
        return str(cause)
    text = str(error or "")
    for kind in STORAGE_ERRORS:
        if f"{kind.__name__}: " in text:
            return text.rsplit(f"{kind.__name__}: ", 1)[1].strip().splitlines()[0]
    return None


class StorageGuard(tune.Callback, Stopper):
    """Stop the experiment as soon as a trial fails because the results storage gave out.

    Retrying other trials against a full volume, or a store that stayed away past its retry
    budget, would only wait out that budget again for each of them. After the experiment the
    driver raises ``error`` again (``raise_if_stopped``), so the run ends with that one error.
    """

    def __init__(self) -> None:
        self.error: tuple[type, str] | None = None

    def _check(self, trial) -> None:
        last = _last_error(trial)
        message = storage_error(last)
        if message is not None and self.error is None:
            cause = getattr(last, "cause", None) or last
            kind = type(cause) if isinstance(cause, STORAGE_ERRORS) else _kind_of(str(last))
            self.error = (kind, message)

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        """Check a failed trial that Tune is about to retry."""
        self._check(trial)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        """Check a trial that failed for good."""
        self._check(trial)

    def __call__(self, trial_id, result) -> bool:
        """Never stop a single trial on its results."""
        return False

    def stop_all(self) -> bool:
        """Stop every trial once the storage has given out."""
        return self.error is not None

    def raise_if_stopped(self) -> None:
        """Raise the storage error that stopped the experiment, if one did."""
        if self.error is not None:
            kind, message = self.error
            raise kind(message)


def _kind_of(text: str) -> type:
    return io.StorageFullError if "StorageFullError" in text else io.StorageUnavailableError


def members(config: dict, plan) -> list:
    """Return the trials a Tune config stands for: a pack's members, else the one trial."""
    from raypi.sweep.grid import TrialConfig
    from raypi.sweep.trainable import resolve_trial

    if "pack" in config:
        return [TrialConfig.from_dict(plan.trials[key]) for key in plan.packs[config["pack"]]]
    return [resolve_trial(config, plan)]


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


class ProgressLine(tune.Callback):
    """One live progress line for a sweep (Tune's own boxes stay off by default).

    It counts stage-1 models and students done, trials running and failed, elapsed time, time
    left at the current rate and the best validation AUC so far. On a terminal the line is
    rewritten in place; into a file or pipe it is printed only when
    another tenth of the trials has finished (or one failed), so logs stay short.
    """

    def __init__(self, plan, total: int, stream=None) -> None:
        import time

        # The console is looked up when written (Tune pickles its callbacks with its state).
        self.plan, self.total, self._stream = plan, total, stream
        self.clock, self.started = time.monotonic, time.monotonic()
        self.done = {"models": 0, "students": 0}
        self.failed, self.running, self.best = 0, set(), float("nan")
        self.shown_tenth = -1

    @property
    def stream(self):
        """Where the line goes: the given stream, else this process's stdout."""
        import sys

        return self._stream or sys.stdout

    @property
    def tty(self) -> bool:
        """Whether the stream is a terminal (then the line is rewritten in place)."""
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_stream": None}

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        """Count the trial as running."""
        self.running.add(trial.trial_id)
        self._show()

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        """Keep the best validation AUC reported so far."""
        value = result.get("best_val_auc")
        if isinstance(value, float) and value == value and not value <= self.best:
            self.best = value

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        """Count the trial (or the pack's members) as done."""
        self.running.discard(trial.trial_id)
        for config in members(trial.config, self.plan):
            self.done["students" if config.is_student else "models"] += 1
        self._show()

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        """Count the trial (or the pack's members) as failed, after its last retry."""
        self.running.discard(trial.trial_id)
        self.failed += len(members(trial.config, self.plan))
        self._show(force=True)

    def on_experiment_end(self, trials, **info) -> None:
        """End the live line."""
        if self.tty:
            self.stream.write("\n")
        elif self.shown_tenth < 10:
            self._show(force=True)

    def line(self) -> str:
        """Return the progress text."""
        finished = sum(self.done.values()) + self.failed
        elapsed = self.clock() - self.started
        left = elapsed / finished * (self.total - finished) if finished else float("nan")
        best = f"{self.best:.3f}" if self.best == self.best else "–"
        return (
            f"raypi: {finished}/{self.total} trials ({self.done['models']} stage-1 models, "
            f"{self.done['students']} students) · {len(self.running)} running · "
            f"{self.failed} failed · {_clock(elapsed)} elapsed · ~{_clock(left)} left · "
            f"best val AUC {best}"
        )

    def _show(self, force: bool = False) -> None:
        finished = sum(self.done.values()) + self.failed
        tenth = int(10 * finished / max(1, self.total))
        if self.tty:
            self.stream.write("\r" + self.line().ljust(120))
        elif force or tenth > self.shown_tenth:
            self.shown_tenth = max(self.shown_tenth, tenth)
            self.stream.write(self.line() + "\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    if seconds != seconds:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
