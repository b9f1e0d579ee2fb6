"""The demo encoders pre-trained on the demo data: upstream formats, real loaders, determinism.

One small demo (48 images) is pre-trained once per module with the shipped recipes; the
folders are then read through the loaders of the real weights (``EncoderSpec.build``), and a
second run with the same seed must give the same weights.
"""

import json

import pytest
import torch

from raypi.data.demo import build_demo
from raypi.encoders import WeightsError, get_encoder
from raypi.pretrain import RECIPES, ensure_pretrained, pretrain, weights_folder
from raypi.pretrain._common import RECIPE_FILE, read_record, weights_sha256
from raypi.pretrain.text import mask_tokens, train_wordpiece

PIXELS = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "demo"
    build_demo(root, n=48, seed=3)
    return str(root)


@pytest.fixture(scope="module")
def built(demo, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    return home, pretrain(demo, home=home)


def test_every_recipe_writes_weights_losses_and_hash(built):
    home, records = built
    assert list(records) == ["demo_bert", "demo_vit_ssl", "demo_vit_clip"]
    for name, record in records.items():
        on_disk = json.loads((weights_folder(name, home) / RECIPE_FILE).read_text())
        assert on_disk == record
        assert len(record["losses"]) == RECIPES[name].epochs
        assert record["losses"][-1] < record["losses"][0]  # it learned something
        # Learned from the separate pre-training draw, never from the task draw.
        assert record["data"] == {"name": "demo-pretrain", "n": 48, "seed": 3, "design": 2}


def test_demo_bert_is_a_hugging_face_folder_read_by_the_bert_loader(built):
    home, records = built
    folder = weights_folder("demo_bert", home)
    names = {path.name for path in folder.iterdir()}
    assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"} <= names
    spec = get_encoder("demo_bert")
    module = spec.build(folder)
    assert module.load_report.loaded > 0 and module.load_report.dropped == ("cls.* (5)",)
    assert weights_sha256(module.model.state_dict()) == records["demo_bert"]["weights_sha256"]
    # The learned vocabulary, not the fallback one, tokenizes the reports.
    vocab = (folder / "vocab.txt").read_text().split()
    assert len(module.tokenizer) == len(vocab) and "heart" in vocab
    tokens, lengths = spec.encode(["Heart size is normal.", ""], 32, module)
    assert tokens.shape == (2, 32, 64) and lengths.tolist()[1] == 2


def test_demo_vit_ssl_is_an_mae_checkpoint_read_by_the_mae_loader(built):
    home, records = built
    folder = weights_folder("demo_vit_ssl", home)
    (checkpoint,) = [p for p in folder.iterdir() if p.suffix == ".pth"]
    stored = torch.load(checkpoint, weights_only=False)
    assert {"model", "optimizer", "epoch", "scaler", "args"} <= set(stored)
    module = get_encoder("demo_vit_ssl").build(folder)  # a folder holding the one .pth
    assert module.load_report.entry == "model" and not module.load_report.dropped
    assert weights_sha256(module.model.state_dict()) == records["demo_vit_ssl"]["weights_sha256"]
    random = get_encoder("tiny_vit").build()
    with torch.inference_mode():
        assert module(PIXELS).shape == (2, 17, 64)
        assert not torch.allclose(module(PIXELS), random(PIXELS))


def test_demo_vit_clip_is_an_open_clip_folder_read_by_the_open_clip_loader(built):
    home, records = built
    folder = weights_folder("demo_vit_clip", home)
    config = json.loads((folder / "open_clip_config.json").read_text())
    assert config["model_cfg"]["text_cfg"]["hf_pooler_type"] == "mean_pooler"
    module = get_encoder("demo_vit_clip").build(folder)
    dropped = module.load_report.dropped
    assert any(key.startswith("text.") for key in dropped) and "logit_scale" in str(dropped)
    assert weights_sha256(module.model.state_dict()) == records["demo_vit_clip"]["weights_sha256"]
    with torch.inference_mode():
        assert module(PIXELS).shape == (2, 17, 64)


def test_open_clip_loader_refuses_another_vision_tower(built, tmp_path):
    home, _ = built
    source = weights_folder("demo_vit_clip", home)
    for path in source.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    config = json.loads((tmp_path / "open_clip_config.json").read_text())
    config["model_cfg"]["vision_cfg"]["image_size"] = 224
    (tmp_path / "open_clip_config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="image_size"):
        get_encoder("demo_vit_clip").build(tmp_path)
    # ... and BiomedCLIP's slot refuses the demo's folder as it is.
    with pytest.raises(WeightsError, match="vision tower"):
        get_encoder("biomedclip").build(source)


def test_same_seed_same_weights_and_cached_weights_are_reused(demo, built, tmp_path):
    home, records = built
    again = pretrain(demo, ["demo_vit_ssl", "demo_bert"], home=tmp_path)
    for name in again:
        assert again[name]["weights_sha256"] == records[name]["weights_sha256"]
    other = pretrain(demo, ["demo_vit_ssl"], seed=1, home=tmp_path / "seed1")
    assert other["demo_vit_ssl"]["weights_sha256"] != records["demo_vit_ssl"]["weights_sha256"]
    # Current weights are kept; a record of another seed or dataset is rebuilt.
    assert ensure_pretrained(demo, list(RECIPES), home=home) == []
    path = weights_folder("demo_vit_ssl", tmp_path) / RECIPE_FILE
    record = read_record(path.parent)
    path.write_text(json.dumps({**record, "data": {**record["data"], "n": 1200}}))
    assert ensure_pretrained(demo, ["demo_vit_ssl", "demo_bert"], home=tmp_path) == ["demo_vit_ssl"]
    assert read_record(path.parent)["weights_sha256"] == records["demo_vit_ssl"]["weights_sha256"]


def test_aligned_encoder_is_rebuilt_when_its_text_encoder_changes(demo, built, tmp_path):
    import shutil

    home, records = built
    shutil.copytree(home, tmp_path, dirs_exist_ok=True)
    assert ensure_pretrained(demo, ["demo_vit_clip"], home=tmp_path) == []
    text = weights_folder("demo_bert", tmp_path) / RECIPE_FILE
    text.write_text(json.dumps({**json.loads(text.read_text()), "weights_sha256": "other"}))
    assert ensure_pretrained(demo, ["demo_vit_clip"], home=tmp_path) == ["demo_vit_clip"]
    rebuilt = read_record(weights_folder("demo_vit_clip", tmp_path))
    assert rebuilt["text_weights_sha256"] == "other"


def test_extraction_never_uses_a_random_demo_encoder(tmp_path, monkeypatch):
    from raypi.features.trust import weights_of

    monkeypatch.setenv("RAYPI_HOME", str(tmp_path))
    with pytest.raises(WeightsError, match="raypi pretrain"):
        weights_of(get_encoder("demo_vit_clip"), {})
    with pytest.raises(WeightsError, match="raypi pretrain"):  # --random-weights never covers it
        weights_of(get_encoder("demo_vit_clip"), {}, allow_random=True)
    assert weights_of(get_encoder("tiny_vit"), {}) is None  # the no-pre-training control


def test_bert_masking_predicts_only_ordinary_tokens():
    tokenizer = train_wordpiece(["heart size normal lungs clear"] * 20, 64, 2)
    ids = torch.randint(5, len(tokenizer), (64, 40), generator=torch.Generator().manual_seed(0))
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True
    inputs, labels = mask_tokens(ids, special, tokenizer, 0.15, torch.Generator().manual_seed(1))
    chosen = labels != -100
    assert not chosen[special].any()
    assert 0.1 < chosen.float().mean() < 0.2
    masked = (inputs == tokenizer.mask_token_id) & chosen
    assert 0.7 < masked.sum() / chosen.sum() < 0.9
    assert torch.equal(inputs[~chosen], ids[~chosen])
