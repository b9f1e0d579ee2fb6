"""No silent random features: extraction refuses, manifests record, sweeps refuse, report names."""

import argparse
import dataclasses

import pytest
import ray
import yaml

from raypi.commands import extract as extract_command
from raypi.data.demo import build_demo
from raypi.encoders import WeightsError, get_encoder
from raypi.features import StoreError, read_manifest, store, trust
from raypi.report import build_report
from raypi.report.synthetic import write_synthetic_results
from raypi.sweep import run_sweep
from raypi.sweep._inputs import check_features, random_encoders
from raypi.sweep.config import ConfigError, spec_from_dict, spec_to_dict
from raypi.sweep.grid import Grid, SweepSpec, expand
from raypi.sweep.synthetic import make_synthetic_study


@pytest.fixture(autouse=True)
def empty_home(tmp_path, monkeypatch):
    """No default weights: ``$RAYPI_HOME/weights`` is empty."""
    monkeypatch.setenv("RAYPI_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def demo_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("trust") / "demo"
    build_demo(root, n=20, seed=0)
    return str(root)


def _cli(argv):
    parser = argparse.ArgumentParser()
    extract_command.register(parser.add_subparsers())
    args = parser.parse_args(["extract", *argv])
    return args.func(args)


def test_real_encoder_without_weights_is_refused_before_ray_starts(demo_dataset, tmp_path, capsys):
    out = ["--out", str(tmp_path / "out")]
    code = _cli(["--dataset", demo_dataset, "--encoders", "tiny_vit,c2l", *out])
    err = capsys.readouterr().err
    assert code == 2
    assert "c2l: no weights given" in err and "--random-weights" in err, err
    assert not ray.is_initialized()
    assert not (tmp_path / "out").exists()


def test_weights_decision_per_kind_of_encoder(tmp_path):
    real, tiny, demo = get_encoder("c2l"), get_encoder("tiny_bert"), get_encoder("demo_vit_ssl")
    assert trust.weights_of(tiny, {}) is None  # random by design, no flag needed
    assert trust.weights_of(real, {}, allow_random=True) is None
    assert trust.weights_of(real, {"c2l": "s3://bucket/c2l.pth"}) == "s3://bucket/c2l.pth"
    with pytest.raises(WeightsError, match="c2l: no weights given"):
        trust.weights_of(real, {})
    with pytest.raises(WeightsError, match="raypi pretrain"):
        trust.weights_of(demo, {}, allow_random=True)  # never random, even when allowed
    assert trust.manifest_fields(tiny, None) == {
        "random_weights": True,
        "weights_published": False,
    }
    assert trust.manifest_fields(real, "w.pth") == {
        "random_weights": False,
        "weights_published": True,
    }


def test_older_manifests_are_judged_from_their_weights_field():
    legacy_real = {"encoder": "c2l", "weights": None}
    legacy_tiny = {"encoder": "tiny_vit", "weights": None}
    synthetic = {"encoder": "c2l", "weights_fingerprint": "synthetic"}
    assert trust.is_random(legacy_real) and not trust.is_random_by_design(legacy_real)
    assert trust.is_random(legacy_tiny) and trust.is_random_by_design(legacy_tiny)
    assert not trust.is_random(synthetic)
    manifests = {("s", "c2l"): legacy_real, ("s", "tiny_vit"): legacy_tiny}
    assert trust.unexpected_random(manifests) == [
        "s/c2l: extracted from a random initialisation (--random-weights), not from its "
        "published weights"
    ]
    assert trust.random_encoders(manifests) == {
        "c2l": "--random-weights",
        "tiny_vit": "no published weights",
    }


@pytest.fixture(scope="module")
def random_study(tmp_path_factory):
    """A synthetic study whose c2l store says it was extracted with --random-weights."""
    source = make_synthetic_study(
        str(tmp_path_factory.mktemp("study")),
        image_encoders=("c2l", "tiny_vit"),
        text_encoders=(),
        images=40,
    )
    for name, published in (("c2l", True), ("tiny_vit", False)):
        manifest = read_manifest(source.features, name)
        fields = {"random_weights": True, "weights_published": published, "weights": None}
        store.write_manifest(source.features, name, {**manifest, **fields})
    return source


def _spec(source, random_weights=False) -> SweepSpec:
    grid = Grid(
        tasks=("demo_prognostic",), encoders=("c2l", "tiny_vit"), methods=("image",),
        seeds=(0,), sizes=(20,), epochs=1,
    )  # fmt: skip
    return SweepSpec("trust", (grid,), {"demo": source}, random_weights=random_weights)


def test_sweep_on_random_features_is_refused_unless_it_says_so(random_study, tmp_path):
    with pytest.raises(StoreError) as refused:
        run_sweep(_spec(random_study), storage=str(tmp_path), prepare_demo=False)
    message = str(refused.value)
    assert "c2l: extracted from a random initialisation" in message
    assert "random_weights: true" in message and "tiny_vit" not in message
    assert not ray.is_initialized() and not (tmp_path / "trust" / "sweep.yaml").exists()
    trials = expand(_spec(random_study, random_weights=True))
    check_features(trials, random_weights=True)  # the config said so
    assert random_encoders(trials) == {
        "c2l": "--random-weights",
        "tiny_vit": "no published weights",
    }


def test_config_field_round_trips_and_is_typed():
    values = {"name": "s", "grids": [{"tasks": ["demo_prognostic"], "encoders": ["c2l"]}]}
    assert spec_from_dict(values).random_weights is False
    spec = spec_from_dict({**values, "random_weights": True})
    assert spec.random_weights and spec_to_dict(spec)["random_weights"] is True
    assert spec.smoke().random_weights
    with pytest.raises(ConfigError, match="random_weights: expected true or false"):
        spec_from_dict({**values, "random_weights": "yes"})


def test_report_header_names_every_encoder_on_random_weights(tmp_path):
    results = write_synthetic_results(
        str(tmp_path / "results" / "grid"), tasks={"readmission": (211, 2119)},
        encoders=("c2l",), seeds=2, sweep="grid",
    )  # fmt: skip
    recorded = {"random_features": {"c2l": "--random-weights", "tiny_vit": "no published weights"}}
    (tmp_path / "results" / "grid" / "sweep.yaml").write_text(yaml.safe_dump(recorded))
    page = open(build_report([results], str(tmp_path / "out"), figures=())).read()
    assert (
        "Random weights in grid: c2l (--random-weights), tiny_vit (no published weights)." in page
    )


@pytest.mark.slow  # ~30 s: a local Ray and two extractions
def test_extraction_records_random_weights_in_the_manifest(tmp_path, demo_dataset):
    """A real (non-tiny) encoder extracted with random_weights; a tiny one without the flag."""
    from raypi.features import extract

    real = dataclasses.replace(get_encoder("tiny_vit"), name="real_vit", tiny=False)
    with pytest.raises(WeightsError, match="real_vit: no weights given"):
        extract(demo_dataset, [real], str(tmp_path / "out"))
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        extract(demo_dataset, [real, "tiny_vit"], str(tmp_path / "out"), random_weights=True)
    finally:
        ray.shutdown()
    made = read_manifest(str(tmp_path / "out"), "real_vit")
    tiny = read_manifest(str(tmp_path / "out"), "tiny_vit")
    assert made["random_weights"] and made["weights_published"] and made["weights"] is None
    assert tiny["random_weights"] and not tiny["weights_published"]
