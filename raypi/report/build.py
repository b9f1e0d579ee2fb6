"""Build the whole report: load results, render every figure and table, write ``index.html``."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pandas as pd

from raypi import __version__, io
from raypi.methods import TEXT_ONLY_MODEL
from raypi.report import _labels, _settings, tables
from raypi.report import html as page_html
from raypi.report._plot import Figure
from raypi.report._select import SELECTIONS
from raypi.report.figures import FIGURES, METRICS, render_one, write_table
from raypi.report.load import Results, load_results
from raypi.report.stats import CI_METHODS, DEFAULT_MARGIN

FIGURES_DIR = "figures"
SELECTION_TEXT = {
    "study": "last epoch for every model except teachers, which keep their best validation epoch "
    "(as in the study)",
    "final": "last epoch for every model",
    "best": "best validation epoch for every model (optimistic: selected on the validation set)",
}


def _figure_block(figure: Figure, out: str, folder: str) -> str:
    data = None
    if figure.table is not None and not figure.table.empty:
        write_table(figure, io.join(out, folder))
        data = f"{folder}/{figure.name}.csv"
    # A figure without any data is only its note on the page (its PNG says the same).
    image = f"{folder}/{figure.name}.png" if figure.path and data else None
    return page_html.figure_html(figure, image, data)


def _format_tests(tests: pd.DataFrame) -> pd.DataFrame:
    if tests.empty:
        return tests
    return pd.DataFrame(
        {
            "Task": tests["task"].map(lambda t: _labels.task_title(str(t))),
            "Training images": tests["size"].map(lambda s: f"{int(s):,}"),
            "Encoder": tests["encoder"].map(_labels.encoder_title),
            "Comparison": tests["comparison"],
            "Seeds": tests["n"].astype(int),
            "Mean Δ": tests["mean_diff"].map(lambda v: f"{v:+.4f}"),
            "95% CI": [
                f"[{lo:+.4f}, {hi:+.4f}]" if pd.notna(lo) else "–"
                for lo, hi in zip(tests["low"], tests["high"])
            ],
            "Paired t p": tests["t_pvalue"].map(lambda p: f"{p:.3g}" if pd.notna(p) else "–"),
            "Wilcoxon p": tests["wilcoxon_pvalue"].map(
                lambda p: f"{p:.3g}" if pd.notna(p) else "–"
            ),
        }
    )


def _metric_pair(blocks: dict[str, str]) -> str:
    """Show the AUC version and fold the AUPRC version under it."""
    return f"{blocks['auc']}<details><summary>AUPRC version</summary>{blocks['auprc']}</details>"


def _figure_sections(trials, out: str, names, ci_method: str, selection: str, variant: str):
    folder = f"{FIGURES_DIR}/{_settings.label_slug(variant)}" if variant else FIGURES_DIR
    figure_dir, sections = io.join(out, folder), []
    for name in names:
        blocks = {}
        for metric in METRICS:
            figure = render_one(name, trials, metric, figure_dir, ci_method, selection)
            blocks[metric] = _figure_block(figure, out, folder)
            if name == "paired":
                tests = _format_tests(figure.table) if figure.table is not None else None
                table = page_html.table_html(tests, "No paired comparisons.")
                blocks[metric] += (
                    f"<details><summary>Paired tests (table)</summary>{table}</details>"
                )
        title = _titled(FIGURES[name].title, variant)
        anchor = _anchor(name.replace("_", "-"), variant)
        sections.append(page_html.Section(anchor, title, _metric_pair(blocks)))
    return sections


def _titled(title: str, variant: str) -> str:
    return f"{title} — {variant}" if variant else title


def _anchor(anchor: str, variant: str) -> str:
    return f"{anchor}-{_settings.label_slug(variant)}" if variant else anchor


def _text_section(trials: pd.DataFrame, selection: str, variant: str) -> page_html.Section:
    empty = "No text-only trials in the results (method 'text')."
    blocks = {
        m: page_html.table_html(tables.text_vs_image(trials, m, selection), empty) for m in METRICS
    }
    body = (
        "<p class='meta'>Text-only model against the best image-only backbone at the same "
        "training size; mean (sd) across seeds, in percent. The text-only model is "
        f"{page_html.escape(TEXT_ONLY_MODEL)}.</p>"
    )
    return page_html.Section(
        _anchor("text-vs-image", variant),
        _titled("Text-only vs image-only", variant),
        body + _metric_pair(blocks),
    )


def _findings_section(trials, out: str, selection: str, variant: str, margin: float):
    """Return the section testing the study's findings, or None when no claim has data."""
    from raypi.report import _select
    from raypi.report._findings_figure import findings_figure
    from raypi.report.findings import check_claims, summary_lines

    tested = check_claims(_select.with_value(trials, "auc", selection), margin=margin)
    if tested.empty:
        return None, []
    folder = f"{FIGURES_DIR}/{_settings.label_slug(variant)}" if variant else FIGURES_DIR
    figure = findings_figure(tested, io.join(out, folder, "findings.png"), margin)
    block = _figure_block(figure, out, folder)
    body = (
        "<p class='meta'>Each claim of the study that these results can test, tested here on "
        "validation AUC, one paired test per training size over the seeds both arms have. "
        "Each gets one of three verdicts — holds, does not hold, inconclusive — as measured; "
        f"a claim of no gain needs an equivalence test (margin ±{100 * margin:g} AUC "
        "points).</p>" + block + page_html.table_html(figure.table)
    )
    lines = summary_lines(tested)
    section = page_html.Section(
        _anchor("findings", variant), _titled("Findings of the study, tested", variant), body
    )
    return section, [f"{variant}: {line}" if variant else line for line in lines]


def _protocol_section(
    results: Results, selection: str, ci_method: str, margin: float
) -> page_html.Section:
    """Return the section saying how the results were obtained and are reported."""
    lines = [
        f"Reported metric: {SELECTION_TEXT[selection]}. Intervals: {ci_method} across seeds.",
        *(f"Protocol of {sweep.name}: {sweep.protocol}." for sweep in results.sweeps),
        f"Text-only model: {TEXT_ONLY_MODEL}.",
        f"A claim of no gain holds only on a paired equivalence test (TOST) with a margin of "
        f"±{100 * margin:g} AUC points; a claim of a gain on a one-sided paired t-test.",
    ]
    body = "".join(f"<p class='meta'>{page_html.escape(line)}</p>" for line in lines)
    return page_html.Section("protocol", "Protocol", body)


def _probe_section(trials: pd.DataFrame) -> tuple[page_html.Section | None, list[str]]:
    """Return the demo probe's section and lines (None without demo trials to probe)."""
    from raypi.report.probe import probe_lines, probe_table

    try:
        table = probe_table(trials)
    except (OSError, ValueError) as error:  # the demo's tables or features are not at hand
        note = f"The probe could not read the demo's tables or features: {error}"
        return page_html.Section("probe", "What the image encoders see", f"<p>{note}</p>"), []
    if table.empty:
        return None, []
    shown = table.assign(**{c: table[c].map(lambda v: f"{v:.2f}") for c in table.columns[1:4]})
    body = (
        "<p class='meta'>Linear probes of the demo's known causes from each image encoder's "
        "frozen features (first token and token mean, unaugmented view), cross-validated over "
        "5 patient-grouped folds; raw pixels show what the image holds at all. A student learns "
        "only what these features hold of what its teacher knows (the hidden groups, for the "
        "prognostic task).</p>" + page_html.table_html(shown)
    )
    return page_html.Section("probe", "What the image encoders see", body), probe_lines(table)


def _overview(results: Results) -> page_html.Section:
    body = page_html.table_html(tables.overview(results))
    if results.duplicates:
        body += (
            f"<p class='meta'>{results.duplicates} trial rows repeated a trial key and were "
            "counted once (the finished, latest row).</p>"
        )
    body += "<h3>Finished trials per task and method</h3>"
    body += page_html.table_html(tables.trial_counts(results.trials), "No finished trials.")
    return page_html.Section("overview", "Overview", body)


def _configs(results: Results) -> page_html.Section:
    parts = []
    for sweep in results.sweeps:
        text = sweep.config_text or "(no sweep.yaml in this folder)"
        parts.append(
            f"<details><summary>{page_html.escape(sweep.name)} — "
            f"{page_html.escape(sweep.path)}</summary><pre>{page_html.escape(text)}</pre>"
            "</details>"
        )
    return page_html.Section("configs", "Sweep configurations", "".join(parts))


def build_report(
    results: list[str],
    out: str,
    ci_method: str = "t",
    selection: str = "study",
    figures: tuple[str, ...] | None = None,
    where: tuple[str, ...] = (),
    margin: float = DEFAULT_MARGIN,
) -> str:
    """Render every figure and table of the study from sweep results into a static report.

    Args:
        results: Result folders (local or ``s3://``), each with ``trials.parquet``, or folders
            of such folders.
        out: Output folder (local or ``s3://``); gets ``index.html`` and ``figures/``.
        ci_method: ``"t"`` (Student t) or ``"bootstrap"`` intervals across seeds.
        selection: Reported epoch: ``"study"``, ``"final"`` or ``"best"``.
        figures: Names of ``FIGURES`` to render (all when None); tables are always made.
        where: ``KEY=VALUE`` conditions on the trials columns; only matching trials are shown.
            Trials that differ in a setting other than the seed are never averaged: each
            setting gets its own set of figures, titled by it.
        margin: Equivalence margin of the findings' "no gain" claims, in AUC units (0.01 =
            1 AUC point; ``raypi.report.findings``).

    Returns:
        Path of the written ``index.html``; ``findings.json`` beside it lists one line per
        tested finding (see ``raypi.report.findings``).
    """
    if not 0 < margin < 1:
        raise ValueError(f"equivalence margin must lie in (0, 1) AUC, got {margin}")
    if ci_method not in CI_METHODS:
        raise ValueError(f"unknown CI method {ci_method!r}; known: {', '.join(CI_METHODS)}")
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection {selection!r}; known: {', '.join(SELECTIONS)}")
    names = tuple(FIGURES) if figures is None else tuple(figures)
    unknown = [name for name in names if name not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figures {unknown}; known: {', '.join(FIGURES)}")
    loaded = load_results([str(path) for path in results])
    if where:
        loaded = replace(loaded, trials=_settings.where(loaded.trials, where))
    sections, findings, probed = [], [], []
    for index, (variant, trials) in enumerate(_settings.variants(_settings.arms(loaded.trials))):
        part = _figure_sections(trials, str(out), names, ci_method, selection, variant)
        # The text-only table reads best beside the distillation results.
        after = names.index("paired") + 1 if "paired" in names else len(part)
        part.insert(after, _text_section(trials, selection, variant))
        tested, lines = _findings_section(trials, str(out), selection, variant, margin)
        findings += lines
        head = [tested] if tested is not None else []
        if index == 0:  # the report opens with the findings and the protocol they rest on
            head.append(_protocol_section(loaded, selection, ci_method, margin))
            probe, probed = _probe_section(loaded.trials)
            head += [probe] if probe is not None else []
        sections += head + part
    sections.append(_overview(loaded))
    failures = tables.failures(loaded.trials)
    sections.append(
        page_html.Section(
            "failures",
            f"Failures ({len(failures)})",
            page_html.table_html(failures, "No failed trials."),
        )
    )
    sections.append(_configs(loaded))
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    meta = [
        f"Generated {stamp} by raypi {__version__} from: {', '.join(map(str, results))}",
        *(
            f"Random weights in {sweep.name}: {', '.join(sweep.random_features)}."
            for sweep in loaded.sweeps
            if sweep.random_features
        ),
    ]
    if where:
        meta.append(f"Only trials with {' and '.join(where)}.")
    index = io.join(str(out), "index.html")
    io.write_bytes(index, page_html.page("raypi report", meta, sections).encode())
    io.write_json(io.join(str(out), "findings.json"), {"findings": findings, "probe": probed})
    return index
