import argparse
from html.parser import HTMLParser
from pathlib import Path

import pytest

from raypi.commands import report as report_command
from raypi.report import FIGURES, build_report
from raypi.report.synthetic import write_synthetic_results


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.ids.add(attrs.get("id"))
        for key in ("src", "href"):
            if attrs.get(key):
                self.links.append(attrs[key])


def _parse(index: Path) -> _Links:
    parser = _Links()
    parser.feed(index.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    write_synthetic_results(
        str(root / "results" / "grid"),
        tasks={"readmission": (211, 2119)},
        encoders=("rad_dino", "mrm"),
        seeds=3,
        failures=2,
        drop=0.05,
        sweep="grid<1>",
    )
    index = build_report([str(root / "results")], str(root / "out"))
    return Path(index)


def test_html_references_only_files_that_exist(report):
    page = _parse(report)
    files = [link for link in page.links if not link.startswith("#")]
    assert any(link.endswith(".png") for link in files)
    assert any(link.endswith(".csv") for link in files)
    for link in files:
        assert "://" not in link and not link.startswith("/"), link  # offline, relative
        assert (report.parent / link).is_file(), link
    for anchor in (link[1:] for link in page.links if link.startswith("#")):
        assert anchor in page.ids, anchor


def test_html_has_every_section_and_the_run_facts(report):
    text = report.read_text(encoding="utf-8")
    for heading in (
        "Overview",
        "Sample efficiency",
        "Distillation",
        "Paired differences",
        "Teacher vs student per seed (Fig. 11)",
        "Per-seed AUCs with and without distillation (Figs. 12–13)",
        "Text-only vs image-only",
        "Protocol",
        "λ search",
        "Failures (2)",
        "Sweep configurations",
    ):
        assert heading in text
    assert "grid&lt;1&gt;" in text and "grid<1>" not in text  # escaped
    assert "synthetic: true" in text  # sweep.yaml is shown
    assert "Readmission" in text and "RAD-DINO" in text  # readable labels
    assert "could not be rendered" not in text
    assert len(list((report.parent / "figures").glob("*.png"))) == 18


def test_report_command_builds_and_prints_the_index(report, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    report_command.register(parser.add_subparsers())
    results = str(report.parent.parent / "results" / "grid")
    argv = ["report", results, "--out", str(tmp_path), "--ci", "bootstrap", "--figures", "paired"]
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "index.html")
    assert sorted(path.name for path in (tmp_path / "figures").glob("*.png")) == [
        "paired_auc.png",
        "paired_auprc.png",
    ]
    assert report_command.FIGURE_NAMES == tuple(FIGURES)
    missing = parser.parse_args(["report", str(tmp_path / "nothing"), "--out", str(tmp_path)])
    assert missing.func(missing) == 1
    assert "trials.parquet" in capsys.readouterr().err


def test_report_reads_results_from_s3(s3_server, tmp_path):
    results = "s3://raypi-test/report-test/grid"
    write_synthetic_results(results, tasks={"readmission": (211,)}, encoders=("mrm",), seeds=2)
    index = Path(build_report([results], str(tmp_path), figures=("sample_efficiency",)))
    text = index.read_text(encoding="utf-8")
    assert results in text and "Readmission" in text
    for link in _parse(index).links:
        assert link.startswith("#") or (tmp_path / link).is_file()
