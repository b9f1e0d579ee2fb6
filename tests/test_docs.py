"""The documentation site builds with warnings as errors, and its Python example runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_docs_build_strict_with_every_stage_and_guide(tmp_path):
    pytest.importorskip("mkdocstrings_handlers.python")
    mkdocs = shutil.which("mkdocs", path=os.path.dirname(sys.executable)) or "mkdocs"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    build = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert "WARNING" not in build.stderr
    site = tmp_path / "site"
    sweep = (site / "api" / "sweep" / "index.html").read_text()
    for name in ("raypi.sweep.launch.run_sweep", "raypi.sweep.results.read_trials",
                 "raypi.sweep.trackers.resolve"):  # fmt: skip
        assert f'id="{name}"' in sweep
    assert 'id="raypi.train.loop.fit"' in (site / "api" / "train" / "index.html").read_text()
    report = (site / "api" / "report" / "index.html").read_text()
    assert 'id="raypi.report.build_report"' in report
    assert "extract" in (site / "api" / "features" / "index.html").read_text()
    assert "Real data: from the raw folders" in (site / "guides/real-data/index.html").read_text()
    cluster = (site / "guides" / "cluster" / "index.html").read_text()
    assert "On a cluster" in cluster and "gpu_16gb" in cluster
    assert "Use raypi from Python: dataset" in (site / "python" / "index.html").read_text()


def test_readme_links_every_docs_page():
    readme = (REPO / "README.md").read_text()
    pages = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").rglob("*.md"))
    assert len(pages) >= 10
    for page in pages:
        assert f"]({page})" in readme, page


@pytest.mark.slow
def test_python_api_example_runs_at_smoke_scale(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run(
        [sys.executable, str(REPO / "examples" / "python_api.py"), "--smoke-test",
         "--out", str(tmp_path / "example")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "3/3 trials ok" in run.stdout
    assert (tmp_path / "example" / "report" / "index.html").exists()
    assert (tmp_path / "example" / "results" / "python_api" / "trials.parquet").exists()
