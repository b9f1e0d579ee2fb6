import argparse
import contextlib
import json
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from raypi.encoders import get_encoder, list_encoders

FULL_IMAGE = ["rad_dino", "c2l", "medical_mae", "mrm", "biovil_t", "gloria", "biomedclip"]
FULL_TEXT = ["cxr_bert", "cxr_bert_general", "bio_clinicalbert"]
VARIANTS = ["c2l_ema", "gloria_upstream", "bio_clinicalbert_lowercase"]  # test_encoders_upstream
# Parameter counts of the upstream architectures without classifier heads, e.g. torchvision
# ResNet-50 25,557,032 - fc 2,049,000; timm ViT-B/16 86,567,656 - head 769,000.
PARAMETERS = {
    "c2l": 11_176_512,
    "gloria": 23_508_032,
    "medical_mae": 85_798_656,
    "mrm": 85_798_656,
    "biomedclip": 85_798_656 + 768 * 512,
}


@pytest.fixture(scope="module")
def built():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = get_encoder(name).build()
        return cache[name]

    return get


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(1)
    small = (rng.random((20, 17)) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(small).resize((170, 200), Image.BILINEAR))


def _tokens(name, module, image):
    with torch.inference_mode():
        return module(get_encoder(name).preprocess(image)[None])


@pytest.mark.parametrize("name", FULL_IMAGE)
def test_full_size_image_encoder_emits_its_token_shape(built, image, name):
    spec, module = get_encoder(name), built(name)
    assert not module.training
    assert not any(p.requires_grad for p in module.parameters())
    if name in PARAMETERS:
        assert sum(p.numel() for p in module.parameters()) == PARAMETERS[name]
    tokens = _tokens(name, module, image)
    assert tokens.shape == (1, *spec.token_shape)
    assert torch.isfinite(tokens).all()


def test_biovil_t_second_half_of_channels_is_constant(built, image):
    tokens = _tokens("biovil_t", built("biovil_t"), image)[0]
    assert torch.equal(tokens[:, 256:], tokens[:1, 256:].expand(196, -1))
    assert tokens[:, :256].std(dim=0).mean() > 0


@pytest.mark.parametrize("name", FULL_TEXT)
def test_full_size_text_encoder_pads_and_reports_lengths(built, name):
    spec = get_encoder(name)
    tokens, lengths = spec.encode(["Heart size is normal.", ""], 16, built(name))
    assert tokens.shape == (2, 16, spec.token_shape[1])
    assert lengths.tolist()[1] == 2 and 2 < lengths[0] <= 16
    assert tokens[1, 2:].abs().sum() == 0 and tokens[1, :2].abs().sum() > 0
    with pytest.raises(ValueError, match="max_length"):
        spec.encode(["x"], 513, built(name))


def test_random_init_is_reproducible(built, image):
    for name in ("tiny_vit", "tiny_resnet"):
        first, second = get_encoder(name).build(), get_encoder(name).build()
        assert torch.equal(_tokens(name, first, image), _tokens(name, second, image))
    # Seeded by name: same architecture, different encoders, different draws.
    assert not torch.equal(built("medical_mae").model.cls_token, built("mrm").model.cls_token)


def test_tiny_encoders_are_fast_on_cpu():
    import time

    batch = torch.zeros(64, 3, 64, 64)
    for name in ("tiny_vit", "tiny_resnet"):
        module = get_encoder(name).build()
        start = time.perf_counter()
        with torch.inference_mode():
            module(batch)
        assert time.perf_counter() - start < 2.0, name


def test_every_entry_is_covered():
    names = {s.name for s in list_encoders(include_tiny=False)}
    assert names == set(FULL_IMAGE + FULL_TEXT + VARIANTS)


# --- upstream checkpoint formats, saved from the full-size modules and loaded back ---------


def _perturb(module, seed=7):
    """Move every float tensor away from the seeded init, so a no-op load cannot pass."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(torch.randn(tensor.shape, generator=generator) * 0.02)
    return module


def _save_c2l(module, folder):
    # C2L's own layout (train_C2L_res18.py; test_encoders_upstream.py mirrors it in full).
    state = {f"encoder.module.{k}": v for k, v in module.model.state_dict().items()}
    state["encoder.module.fc.weight"] = torch.zeros(128, 512)
    opt = argparse.Namespace(c2l=True)
    torch.save({"opt": opt, "model": state, "epoch": 240}, folder / "current.pth")
    return folder, ("encoder.* (1)",)  # a folder holding one checkpoint works too


def _save_lightning(module, folder):
    state = {f"gloria.img_encoder.model.{k}": v for k, v in module.model.state_dict().items()}
    state["gloria.img_encoder.global_embedder.weight"] = torch.zeros(768, 2048)
    state["gloria.text_encoder.model.embeddings.word_embeddings.weight"] = torch.zeros(10, 768)
    checkpoint = {
        "epoch": 49,
        "pytorch-lightning_version": "1.1.4",
        "state_dict": state,
        # Like Lightning's hparams: a class of a package that need not be installed where
        # the checkpoint is read, allowed by name only as inert metadata.
        "hyper_parameters": {"cfg": _config_of_a_missing_package(), "args": argparse.Namespace()},
    }
    with _fake_package():
        torch.save(checkpoint, folder / "chexpert_resnet50.ckpt")
    return folder / "chexpert_resnet50.ckpt", ("gloria.* (2)",)


FAKE_PACKAGE = types.ModuleType("pytorch_lightning.utilities.parsing")  # not installed here
FAKE_PACKAGE.AttributeDict = type(
    "AttributeDict", (dict,), {"__module__": "pytorch_lightning.utilities.parsing"}
)
FAKE_NAMES = ("pytorch_lightning", "pytorch_lightning.utilities", FAKE_PACKAGE.__name__)


@contextlib.contextmanager
def _fake_package():
    for name in FAKE_NAMES:
        sys.modules[name] = (
            FAKE_PACKAGE if name == FAKE_PACKAGE.__name__ else types.ModuleType(name)
        )
    try:
        yield
    finally:
        for name in FAKE_NAMES:
            del sys.modules[name]


def _config_of_a_missing_package():
    config = FAKE_PACKAGE.AttributeDict(lr=5e-5, flags={"phase": "pretrain"})
    return config


def _save_mrm(module, folder):
    state = dict(module.model.state_dict())
    state |= {"mask_token": torch.zeros(1, 1, 768), "decoder_embed.weight": torch.zeros(8, 768)}
    state |= {"decoder_blocks.0.norm1.weight": torch.zeros(8), "bert_mlp.weight": torch.zeros(4)}
    state |= {"bert_encoder.model.embeddings.word_embeddings.weight": torch.zeros(4, 8)}
    torch.save({"model": state, "optimizer": {}, "epoch": 200}, folder / "MRM.pth")
    dropped = ("bert_encoder.* (1)", "bert_mlp.* (1)", "decoder_blocks.* (1)")
    return folder / "MRM.pth", (*dropped, "decoder_embed.* (1)", "mask_token.* (1)")


def _save_hf(module, folder):
    module.model.save_pretrained(folder / "rad-dino")
    return folder / "rad-dino", ()


def _save_open_clip(module, folder):
    from raypi.encoders.clip import EMBED_DIM, OPENAI_MEAN, OPENAI_STD, VISION_CFG

    state = {f"visual.{k}": v for k, v in module.model.state_dict().items()}
    state |= {"text.proj.0.weight": torch.zeros(4, 768), "logit_scale": torch.tensor(4.6)}
    torch.save(state, folder / "open_clip_pytorch_model.bin")
    config = {
        "model_cfg": {"embed_dim": EMBED_DIM, "vision_cfg": VISION_CFG, "text_cfg": {}},
        "preprocess_cfg": {"mean": list(OPENAI_MEAN), "std": list(OPENAI_STD)},
    }
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    return folder, ("logit_scale.* (1)", "text.* (1)")


def _save_biovil(module, folder):
    torch.save(module.model.state_dict(), folder / "biovil_t_image_model_proj_size_128.pt")
    return folder, ()


SAVERS = {
    "c2l": (_save_c2l, 224),
    "gloria": (_save_lightning, 224),
    "mrm": (_save_mrm, 224),
    "rad_dino": (_save_hf, 112),  # Dinov2 interpolates its position embeddings: a small input
    "biomedclip": (_save_open_clip, 224),
    "biovil_t": (_save_biovil, 224),  # a smaller grid than 14x14 is fine for single images
}


@pytest.mark.parametrize("name", list(SAVERS))
def test_upstream_checkpoint_loads_back_exactly(built, tmp_path, name):
    save, side = SAVERS[name]
    original = _perturb(built(name))
    path, dropped = save(original, tmp_path)
    loaded = get_encoder(name).build(str(path))
    pixels = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.equal(loaded(pixels), original(pixels))
    assert loaded.load_report.dropped == dropped
    assert not any(p.requires_grad for p in loaded.parameters()) and not loaded.training
