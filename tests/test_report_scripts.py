import importlib
import sys
from pathlib import Path

import pytest

ANALYSIS = Path(__file__).resolve().parent.parent / "analysis"


@pytest.fixture()
def analysis_script(monkeypatch):
    monkeypatch.syspath_prepend(str(ANALYSIS))

    def load(name):
        sys.modules.pop(name, None)
        return importlib.import_module(name)

    return load


def test_make_report_smoke_test(analysis_script, tmp_path, capsys):
    assert analysis_script("make_report").main(["--smoke-test", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "index.html")
    assert (tmp_path / "figures" / "distillation_auprc.png").is_file()


@pytest.mark.parametrize(
    ("script", "figure"),
    [
        ("sample_efficiency", "sample_efficiency_auc"),
        ("distillation", "paired_auc"),
        ("ablations", "lambda_search_auc"),
    ],
)
def test_figure_scripts_smoke_test(analysis_script, tmp_path, capsys, script, figure):
    argv = ["--smoke-test", "--out", str(tmp_path), "--metric", "auc"]
    assert analysis_script(script).main(argv) == 0
    assert str(tmp_path / f"{figure}.png") in capsys.readouterr().out
    assert (tmp_path / f"{figure}.csv").is_file()
