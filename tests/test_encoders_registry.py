import argparse
import json

import pytest

from raypi.commands import encoders as encoders_command
from raypi.encoders import EncoderSpec, ResourceHint, get_encoder, list_encoders, register
from raypi.encoders.registry import _REGISTRY

STUDY_IMAGE = {"rad_dino", "c2l", "medical_mae", "mrm", "biovil_t", "gloria", "biomedclip"}
STUDY_TEXT = {"cxr_bert", "cxr_bert_general", "bio_clinicalbert"}
# Named alternatives of the study's choices (C2L's EMA encoder, GLoRIA's own forward, casing).
VARIANT_IMAGE = {"c2l_ema", "gloria_upstream"}
VARIANT_TEXT = {"bio_clinicalbert_lowercase"}
TINY = {"tiny_vit", "tiny_resnet", "tiny_bert", "demo_vit_ssl", "demo_vit_clip", "demo_bert"}


def test_registry_holds_the_study_encoders_and_tiny_variants():
    assert {
        s.name for s in list_encoders("image", include_tiny=False)
    } == STUDY_IMAGE | VARIANT_IMAGE
    assert {s.name for s in list_encoders("text", include_tiny=False)} == STUDY_TEXT | VARIANT_TEXT
    assert {s.name for s in list_encoders() if s.tiny} == TINY


def test_unknown_name_lists_known_ones():
    with pytest.raises(KeyError, match="rad_dino") as error:
        get_encoder("rad-dino")
    assert "unknown encoder 'rad-dino'" in str(error.value)


def test_duplicate_name_raises():
    spec = get_encoder("tiny_vit")
    with pytest.raises(ValueError, match="already registered"):
        register(spec)
    assert _REGISTRY["tiny_vit"] is spec


def test_bad_kind_raises():
    with pytest.raises(ValueError, match="kind"):
        list_encoders("audio")


@pytest.mark.parametrize("spec", list_encoders(), ids=lambda s: s.name)
def test_entries_are_complete(spec: EncoderSpec):
    assert spec.kind in ("image", "text")
    assert (spec.preprocessing is None) == (spec.kind == "text")
    assert spec.loader is not None and spec.weights_hint
    assert spec.hint.batch_size > 0 and spec.hint.gpu_memory_gb > 0
    if spec.kind == "image":
        assert spec.preprocessing.crop == spec.input_size


def test_resource_hints_mark_rad_dino_big_and_give_fractions():
    assert get_encoder("rad_dino").hint.needs_big_gpu
    assert not any(s.hint.needs_big_gpu for s in list_encoders() if s.name != "rad_dino")
    # The one GPU-share rule (raypi.cluster.gpu_share): 1/8, 1/4, 1/2 or a whole GPU.
    assert ResourceHint(4.0, 64).gpu_fraction(16) == 0.25
    assert ResourceHint(4.5, 64).gpu_fraction(16) == 0.5
    assert ResourceHint(24.0, 64).gpu_fraction(16) == 1.0
    assert ResourceHint(0.5, 64).gpu_fraction(80) == 0.125


def test_bytes_per_item_in_fp16():
    assert get_encoder("rad_dino").bytes_per_item() == 1370 * 768 * 2
    assert get_encoder("cxr_bert").bytes_per_item(length=128) == 128 * 768 * 2


def _run_command(argv):
    parser = argparse.ArgumentParser()
    encoders_command.register(parser.add_subparsers())
    args = parser.parse_args(["encoders", *argv])
    return args.func(args)


def test_command_lists_every_encoder_as_json(capsys):
    assert _run_command(["--json", "--text-length", "64"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == STUDY_IMAGE | STUDY_TEXT | VARIANT_IMAGE | VARIANT_TEXT | TINY
    assert rows["rad_dino"]["tokens"] == "1370x768"
    assert rows["rad_dino"]["fp16/item"] == "2.01 MiB"
    assert rows["cxr_bert"]["tokens"] == "64x768"
    assert rows["gloria"]["weights"].endswith("weights/gloria")


def test_command_table_without_tiny(capsys):
    assert _run_command(["--no-tiny", "--kind", "image"]) == 0
    out = capsys.readouterr().out
    assert "biovil_t" in out and "196x512" in out
    assert "tiny_vit" not in out and "cxr_bert" not in out


def test_importing_the_package_switches_hugging_face_offline():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE")}
    code = "import raypi.encoders, huggingface_hub.constants as c; print(c.HF_HUB_OFFLINE)"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.stdout.strip() == "True", result.stderr[-2000:]
