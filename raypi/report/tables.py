"""Tables of the report: text-only vs image-only (study Table 7), trial counts, failures."""

from __future__ import annotations

import pandas as pd

from raypi.report import _columns as col
from raypi.report import _labels, _select
from raypi.report.load import Results
from raypi.report.stats import summarize

ERROR_CHARS = 300


def _percent(mean: float, std: float) -> str:
    """Return ``"96.4 (1.1)"``: mean and standard deviation across seeds, in percent."""
    if pd.isna(mean):
        return "–"
    return f"{100 * mean:.1f} ({100 * std:.1f})" if pd.notna(std) else f"{100 * mean:.1f} (–)"


def text_vs_image(trials: pd.DataFrame, metric: str, selection: str = "study") -> pd.DataFrame:
    """Return the text-only model against the best image-only model per task and size.

    Args:
        trials: The trials table.
        metric: ``"auc"`` or ``"auprc"``.
        selection: Which epoch's metric to report.

    Returns:
        One row per (task, size) with text-only trials; empty when there are none. Values are
        ``mean (sd)`` across seeds in percent.
    """
    name = _labels.metric_title(metric)
    columns = [
        "Task",
        "Training images",
        "Text encoder",
        f"Text {name} (sd)",
        f"Best image {name} (sd)",
        "Image model",
        "Seeds (text / image)",
    ]
    rows = _select.main_rows(_select.with_value(trials, metric, selection), ("text", "image"))
    by = [col.TASK, col.SIZE, col.ENCODER]
    # A text-only model ignores the image encoder: one value per seed, whatever that column says.
    text_rows = rows[rows[col.METHOD] == "text"].assign(**{col.ENCODER: rows[col.TEXT_ENCODER]})
    if text_rows.empty:
        return pd.DataFrame(columns=columns)
    per_seed = text_rows.groupby([*by, col.SEED])["value"].mean().reset_index()
    text = summarize(per_seed, by)
    image = summarize(rows[rows[col.METHOD] == "image"], by)
    out = []
    order = sorted(
        range(len(text)),
        key=lambda i: (_labels.task_rank(text[col.TASK].iloc[i]), text[col.SIZE].iloc[i]),
    )
    for _, row in text.iloc[order].iterrows():
        same = image[(image[col.TASK] == row[col.TASK]) & (image[col.SIZE] == row[col.SIZE])]
        best = same.loc[same["mean"].idxmax()] if not same.empty else None
        out.append(
            (
                _labels.task_title(str(row[col.TASK])),
                f"{int(row[col.SIZE]):,}",
                _labels.encoder_title(row[col.ENCODER]),
                _percent(row["mean"], row["std"]),
                _percent(best["mean"], best["std"]) if best is not None else "no image-only trials",
                _labels.encoder_title(best[col.ENCODER]) if best is not None else "–",
                f"{row['n']} / {best['n'] if best is not None else 0}",
            )
        )
    return pd.DataFrame(out, columns=columns)


def overview(results: Results) -> pd.DataFrame:
    """Return one row per results folder: trials, failures and compute time, plus a total row.

    Args:
        results: The loaded results.

    Returns:
        Columns Sweep, Folder, Trials, Failed, Compute (GPU/CPU hours).
    """
    rows = [(s.name, s.path, s.trials, s.failed, s.train_seconds / 3600) for s in results.sweeps]
    frame = pd.DataFrame(rows, columns=["Sweep", "Folder", "Trials", "Failed", "Training time (h)"])
    total = (
        "Total",
        "",
        frame["Trials"].sum(),
        frame["Failed"].sum(),
        frame["Training time (h)"].sum(),
    )
    frame.loc[len(frame)] = total
    frame["Training time (h)"] = frame["Training time (h)"].map(lambda h: f"{h:.2f}")
    return frame


def trial_counts(trials: pd.DataFrame) -> pd.DataFrame:
    """Return finished trials per task (rows) and method (columns).

    Args:
        trials: The trials table.

    Returns:
        A count table with readable labels; empty without finished trials.
    """
    ok = trials[(trials[col.STATUS].astype("string") == col.STATUS_OK).fillna(False)]
    if ok.empty:
        return pd.DataFrame()
    counts = pd.crosstab(ok[col.TASK], ok[col.METHOD])
    counts = counts.loc[sorted(counts.index, key=_labels.task_rank)]
    counts.index = [_labels.task_title(str(task)) for task in counts.index]
    ordered = [m for m in (*_labels.METHOD_ORDER, "text") if m in counts]
    counts = counts[ordered + [m for m in counts if m not in ordered]]
    counts.columns = [_labels.method_title(str(m)) for m in counts.columns]
    counts.index.name, counts.columns.name = "Task", None
    return counts.reset_index()


def failures(trials: pd.DataFrame) -> pd.DataFrame:
    """Return the failed trials with their configuration and the first line of their error.

    Args:
        trials: The trials table.

    Returns:
        One row per trial whose status is not ``ok``, with readable column names and values.
    """
    failed = trials[(trials[col.STATUS].astype("string") != col.STATUS_OK).fillna(True)]
    error = failed[col.ERROR].astype("string").fillna("").str.split("\n").str[0]
    text = failed[col.TEXT_ENCODER]
    return pd.DataFrame({
        "Sweep": failed[col.SWEEP],
        "Task": failed[col.TASK].map(lambda task: _labels.task_title(str(task))),
        "Encoder": failed[col.ENCODER].map(_labels.encoder_title),
        "Text encoder": text.map(lambda n: _labels.encoder_title(n) if pd.notna(n) else "–"),
        "Method": failed[col.METHOD].map(lambda m: _labels.method_title(str(m))),
        "Head": failed[col.HEAD].map(lambda h: _labels.head_title(str(h))),
        "Training images": failed[col.SIZE].map(lambda s: f"{int(s):,}" if pd.notna(s) else "–"),
        "Seed": failed[col.SEED],
        "Status": failed[col.STATUS],
        "Error": error.str.slice(0, ERROR_CHARS),
    }).reset_index(drop=True)  # fmt: skip
