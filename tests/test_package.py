"""The package a lab installs and cites: `pip install .`, one version, LICENSE, CITATION, extras.

`pip install .` runs for real into a fresh virtual environment (built from the repository's
package files, without build isolation and without dependencies, so it takes seconds and no
network): the environment sees the already-installed dependencies through a path file, never
this checkout's raypi. It proves the package builds from its metadata, carries every module,
and installs a `raypi` console script whose `--help` works; it does not prove that PyPI
resolves the dependencies (`make install` does that).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import tomllib
import yaml

import raypi

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def test_pip_install_into_a_fresh_venv_gives_a_working_raypi(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "raypi", source / "raypi", ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = subprocess.run([str(python), "-c", purelib], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip
    # The dependencies already installed here, seen (not installed) by the fresh venv.
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         "--no-build-isolation", str(source)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-2000:]
    where = subprocess.run([str(python), "-c", "import raypi; print(raypi.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path)  # fmt: skip
    assert where.stdout.strip().startswith(site), where.stdout + where.stderr
    run = subprocess.run([str(venv / "bin" / "raypi"), "--help"], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "sweep" in run.stdout and "report" in run.stdout
    version = subprocess.run([str(venv / "bin" / "raypi"), "--version"], capture_output=True,
                             text=True, env=env, cwd=tmp_path)  # fmt: skip
    assert version.stdout.strip() == f"raypi {raypi.__version__}"
    metadata = subprocess.run(
        [str(python), "-c", "from importlib.metadata import version; print(version('raypi'))"],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert metadata.stdout.strip() == raypi.__version__


def test_the_version_is_written_once_and_cited_and_logged():
    assert "version" not in PYPROJECT["project"] and "version" in PYPROJECT["project"]["dynamic"]
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert citation["version"] == raypi.__version__
    assert "arXiv:2510.24385" in str(citation["preferred-citation"])
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert f"\n## {raypi.__version__} " in changelog


def test_license_file_is_the_license_pyproject_names():
    assert PYPROJECT["project"]["license"] == "MIT"
    assert (REPO / "LICENSE").read_text().startswith("MIT License\n")


def test_extras_install_only_what_each_use_needs():
    core = {re.split(r"[<>=\[ ]", d)[0] for d in PYPROJECT["project"]["dependencies"]}
    extras = PYPROJECT["project"]["optional-dependencies"]
    for package in ("mlflow", "wandb", "mkdocs", "pytest", "moto", "tensorboard"):
        assert package not in core
    assert any(d.startswith("mlflow-skinny") for d in extras["tracking"])
    assert any(d.startswith("wandb") for d in extras["tracking"])
    assert any(d.startswith("boto3") for d in extras["s3"])
    assert any(d.startswith("mkdocstrings") for d in extras["docs"])
    assert "raypi[s3,tracking,docs]" in extras["test"] and extras["dev"] == ["raypi[test]"]
