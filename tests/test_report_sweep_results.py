"""The report reads what the sweep writes: rows made by raypi.sweep.results, collected."""

import itertools

from raypi.report import load_results
from raypi.report.figures import render_one
from raypi.report.tables import text_vs_image
from raypi.sweep import results as sweep_results
from raypi.sweep.grid import TrialConfig


def _config(method, encoder, seed, text_encoder=None, lam=None, tau=None):
    return TrialConfig(
        task="demo_prognostic",
        dataset="demo",
        encoder=encoder,
        text_encoder=text_encoder,
        method=method,
        head="attention",
        size=40,
        seed=seed,
        lam=lam,
        tau=tau,
        lr=1e-4,
        batch_size=8,
        epochs=3,
        views=None,
        dtype="fp32",
    )


def test_report_reads_collected_sweep_results(tmp_path):
    folder = str(tmp_path / "demo_sweep")
    arms = [
        ("image", {}),
        ("teacher", {"text_encoder": "tiny_bert"}),
        ("distill", {"text_encoder": "tiny_bert", "lam": 0.5, "tau": 0.25}),
        ("self_distill", {"lam": 0.5, "tau": 0.25}),
    ]
    for (method, extra), encoder, seed in itertools.product(
        arms, ("tiny_vit", "tiny_resnet"), range(3)
    ):
        config = _config(method, encoder, seed, **extra).to_dict()
        auc = 0.6 + 0.05 * seed + (0.02 if method == "distill" else 0)
        row = sweep_results.trial_row(
            "demo",
            config,
            sweep_results.OK,
            auc_final=auc,
            auc_best=auc + 0.01,
            auprc_final=auc - 0.1,
            auprc_best=auc - 0.09,
            train_seconds=2.0,
        )
        sweep_results.write_trial(folder, row, [{"epoch": 1, "loss": 0.5, "val_auc": auc}])
    text = _config("text", None, 0, text_encoder="tiny_bert").to_dict()
    failed = sweep_results.trial_row("demo", text, sweep_results.FAILED, error="ValueError: x")
    sweep_results.write_trial(folder, failed)
    sweep_results.collect(folder)

    loaded = load_results([folder])
    assert len(loaded.trials) == 25 and loaded.sweeps[0].failed == 1
    assert len(loaded.epochs) == 24
    figure = render_one("paired", loaded.trials, "auc", str(tmp_path / "fig"), "t", "study")
    distilled = figure.table[figure.table["comparison"].str.startswith("Distilled")]
    assert distilled["n"].tolist() == [3, 3]
    assert distilled["mean_diff"].round(6).tolist() == [0.02, 0.02]
    bars = render_one("distillation", loaded.trials, "auc", str(tmp_path / "fig"), "t", "study")
    assert set(bars.table["method"]) == {"image", "teacher", "distill", "self_distill"}
    assert text_vs_image(loaded.trials, "auc").empty  # the only text trial failed
