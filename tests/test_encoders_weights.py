import json

import numpy as np
import pytest
import torch
from PIL import Image

from raypi.encoders import WeightsError, get_encoder
from raypi.encoders.clip import (
    EMBED_DIM,
    OPENAI_MEAN,
    OPENAI_STD,
    VISION_CFG,
    load_open_clip_folder,
)
from raypi.encoders.dino import DinoTokens, build_dinov2, load_hf_dinov2

SMALL_DINO = dict(
    hidden_size=32, num_hidden_layers=1, num_attention_heads=2, patch_size=14, image_size=56
)


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(2)
    small = (rng.random((16, 21)) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(small).resize((210, 160), Image.BILINEAR))


def _perturb(module, seed=7):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(torch.randn(tensor.shape, generator=generator) * 0.02)
    return module


def _image_roundtrip(name, path, image, original):
    spec = get_encoder(name)
    loaded = spec.build(path)
    with torch.inference_mode():
        assert torch.equal(
            loaded(spec.preprocess(image)[None]), original(spec.preprocess(image)[None])
        )
    return loaded.load_report


def test_torchvision_state_dict_with_classifier(tmp_path, image):
    original = _perturb(get_encoder("tiny_resnet").build())
    state = dict(original.model.state_dict(), **{"fc.weight": torch.zeros(1000, 64)})
    torch.save(state, tmp_path / "tiny_resnet.pth")
    report = _image_roundtrip("tiny_resnet", str(tmp_path / "tiny_resnet.pth"), image, original)
    assert report.dropped == ("fc.* (1)",)
    assert report.loaded == len(original.model.state_dict())


def test_mae_pretraining_checkpoint(tmp_path, image):
    original = _perturb(get_encoder("tiny_vit").build())
    state = dict(original.model.state_dict())
    state |= {"mask_token": torch.zeros(1, 1, 32), "decoder_embed.weight": torch.zeros(32, 64)}
    state |= {
        "decoder_pos_embed": torch.zeros(1, 17, 32),
        "decoder_pred.weight": torch.zeros(3, 32),
    }
    torch.save({"model": state, "optimizer": {}, "epoch": 800}, tmp_path / "vit-b_CXR_0.5M_mae.pth")
    report = _image_roundtrip("tiny_vit", str(tmp_path / "vit-b_CXR_0.5M_mae.pth"), image, original)
    assert report.dropped == (
        "decoder_embed.* (1)",
        "decoder_pos_embed.* (1)",
        "decoder_pred.* (1)",
        "mask_token.* (1)",
    )


def _bert_folder(folder, module, *, old_style):
    folder.mkdir()
    module.model.config.to_json_file(folder / "config.json")
    state = {f"bert.{k}": v for k, v in module.model.state_dict().items()}
    state["cls.predictions.bias"] = torch.zeros(module.model.config.vocab_size)
    if old_style:  # TF-era checkpoints such as Bio_ClinicalBERT's pytorch_model.bin
        state = {k.replace("LayerNorm.weight", "LayerNorm.gamma"): v for k, v in state.items()}
        state = {k.replace("LayerNorm.bias", "LayerNorm.beta"): v for k, v in state.items()}
        state["bert.embeddings.position_ids"] = torch.arange(128)[None]
        torch.save(state, folder / "pytorch_model.bin")
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, folder / "model.safetensors")
    vocab = module.tokenizer.get_vocab()
    (folder / "vocab.txt").write_text("\n".join(sorted(vocab, key=vocab.get)))


@pytest.mark.parametrize("old_style", [True, False], ids=["pytorch_model.bin", "safetensors"])
def test_bert_hf_folder(tmp_path, old_style):
    spec = get_encoder("tiny_bert")
    original = _perturb(spec.build())
    _bert_folder(tmp_path / "bert", original, old_style=old_style)
    loaded = spec.build(str(tmp_path / "bert"))
    texts = ["Small left pleural effusion.", "No acute findings; heart size normal."]
    expected, expected_lengths = spec.encode(texts, 48, original)
    tokens, lengths = spec.encode(texts, 48, loaded)
    assert torch.equal(lengths, expected_lengths)
    assert torch.equal(tokens, expected)
    assert loaded.load_report.dropped == ("cls.* (1)",)


def test_misfit_checkpoint_names_expected_and_found_keys(tmp_path):
    torch.save(get_encoder("c2l").build().model.state_dict(), tmp_path / "resnet18.pth")
    with pytest.raises(WeightsError) as error:
        get_encoder("gloria").build(str(tmp_path / "resnet18.pth"))
    message = str(error.value)
    assert "does not fit" in message and "resnet18.pth" in message
    assert "missing in file: layer1.0.bn3" in message
    assert (
        "wrong shape: layer1.0.conv1.weight: model (64, 64, 1, 1) vs file (64, 64, 3, 3)" in message
    )
    assert "model expects keys like" in message and "file has keys like" in message


def test_finetuned_vit_head_is_not_silently_dropped(tmp_path):
    state = dict(get_encoder("tiny_vit").build().model.state_dict())
    state |= {"fc_norm.weight": torch.ones(64), "head.weight": torch.zeros(14, 64)}
    torch.save({"model": state}, tmp_path / "finetuned.pth")
    with pytest.raises(WeightsError, match="not in model: fc_norm.weight, head.weight"):
        get_encoder("tiny_vit").build(str(tmp_path / "finetuned.pth"))


def test_wrong_vocabulary_size_is_reported(tmp_path):
    _bert_folder(tmp_path / "bert", get_encoder("tiny_bert").build(), old_style=False)
    with pytest.raises(WeightsError, match="wrong shape: .*word_embeddings.weight"):
        get_encoder("cxr_bert").build(str(tmp_path / "bert"))
    (tmp_path / "bert" / "vocab.txt").unlink()
    with pytest.raises(WeightsError, match="vocab.txt"):
        get_encoder("tiny_bert").build(str(tmp_path / "bert"))


def _open_clip_config(folder, vision_cfg):
    config = {
        "model_cfg": {"embed_dim": EMBED_DIM, "vision_cfg": vision_cfg, "text_cfg": {}},
        "preprocess_cfg": {"mean": list(OPENAI_MEAN), "std": list(OPENAI_STD)},
    }
    (folder / "open_clip_config.json").write_text(json.dumps(config))


def test_missing_files_and_wrong_configs(tmp_path):
    with pytest.raises(WeightsError, match="weights not found at .*nope.pth"):
        get_encoder("c2l").build(str(tmp_path / "nope.pth"))
    small_dino = DinoTokens(build_dinov2(SMALL_DINO).model)
    with pytest.raises(WeightsError, match="model.safetensors"):
        load_hf_dinov2(small_dino, str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"patch_size": 16}))
    with pytest.raises(WeightsError, match="patch_size"):
        load_hf_dinov2(small_dino, str(tmp_path))
    processor = {"image_mean": [0.5] * 3, "size": {"shortest_edge": 518}}
    (tmp_path / "config.json").write_text(json.dumps({"patch_size": 14}))
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(processor))
    with pytest.raises(WeightsError, match="image_mean"):
        load_hf_dinov2(small_dino, str(tmp_path))
    with pytest.raises(WeightsError, match="open_clip_config.json"):
        load_open_clip_folder(None, str(tmp_path))
    _open_clip_config(tmp_path, dict(VISION_CFG, timm_model_name="vit_large_patch16_224"))
    with pytest.raises(WeightsError, match="is not the expected"):
        load_open_clip_folder(None, str(tmp_path))
    (tmp_path / "two.pth").touch()
    (tmp_path / "three.pth").touch()
    with pytest.raises(WeightsError, match="expected one"):
        get_encoder("tiny_resnet").build(str(tmp_path))


def test_small_dinov2_hf_folder_roundtrip(tmp_path):
    original = _perturb(build_dinov2(SMALL_DINO))
    original.model.save_pretrained(tmp_path)
    loaded = DinoTokens(build_dinov2(SMALL_DINO).model)
    report = load_hf_dinov2(loaded, str(tmp_path))
    pixels = torch.randn(2, 3, 56, 56)
    with torch.inference_mode():
        assert torch.equal(loaded(pixels), original(pixels))
    assert report.dropped == () and report.loaded == len(original.model.state_dict())


def test_s3_weights_are_fetched_once_checked_and_refetched_when_changed(s3_server, tmp_path):
    import uuid

    from conftest import S3_BUCKET

    from raypi import io
    from raypi.encoders.weights import WeightsError, fetch_weights

    prefix = f"s3://{S3_BUCKET}/weights-{uuid.uuid4().hex[:8]}"
    io.write_bytes(f"{prefix}/model.pth", b"first")
    io.write_bytes(f"{prefix}/folder/config.json", b"{}")
    io.write_bytes(f"{prefix}/folder/sub/model.safetensors", b"tensors")
    cache = tmp_path / "cache"
    local = fetch_weights(f"{prefix}/model.pth", cache)
    assert open(local, "rb").read() == b"first"
    folder = fetch_weights(f"{prefix}/folder", cache)
    assert open(f"{folder}/sub/model.safetensors", "rb").read() == b"tensors"
    assert fetch_weights(f"{prefix}/model.pth", cache) == local  # cached
    io.write_bytes(f"{prefix}/model.pth", b"second, longer")
    assert open(fetch_weights(f"{prefix}/model.pth", cache), "rb").read() == b"second, longer"
    assert fetch_weights("/local/model.pth", cache) == "/local/model.pth"
    with pytest.raises(WeightsError, match="weights not found at"):
        fetch_weights(f"{prefix}/nothing-here", cache)
