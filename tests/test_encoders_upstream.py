"""Checkpoints saved exactly as the encoders' authors save them load, and unsafe pickles do not.

Each fixture builds random weights and saves them with the upstream script's own save call
(cited per test); raypi then loads the file the way ``raypi extract --weights NAME=PATH``
does (``EncoderSpec.build(PATH)``), and the loaded tensors and one forward are compared with
a module built directly from the file's weights.
"""

import argparse
import json
import sys
import types

import pytest
import torch
from torch import nn

from raypi.commands.extract import _weights as parse_weights
from raypi.encoders import WeightsError, get_encoder

PIXELS = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))


def _random(module, seed=1):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                noise = torch.randn(tensor.shape, generator=generator) * 0.05
                tensor.copy_(noise.abs() + 0.5 if name.endswith("running_var") else noise)
    return module


def _same_forward(loaded, reference, pixels=PIXELS):
    loaded.eval(), reference.eval()
    with torch.inference_mode():
        torch.testing.assert_close(loaded(pixels), reference(pixels), rtol=0, atol=0)


class _InsResNet18(nn.Module):
    """C2L's ``models/resnet_mixup.py InsResNet18``: the ResNet wrapped in DataParallel."""

    def __init__(self, seed):
        super().__init__()
        import torchvision

        resnet = torchvision.models.resnet18(weights=None)
        resnet.fc = nn.Linear(512, 128)  # C2L's low_dim projection
        self.encoder = nn.DataParallel(_random(resnet, seed))


def _c2l_checkpoint(path):
    """funnyzhou/C2L_MICCAI2020 ``train_C2L_res18.py``: ``state = {'opt': args, 'model': …,
    'contrast': …, 'optimizer': …, 'epoch': …}; state['model_ema'] = …; torch.save(state, …)``."""
    model, model_ema = _InsResNet18(1), _InsResNet18(2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9)
    args = argparse.Namespace(batch_size=128, c2l=True, amp=False, model_folder="/ckpt", lr=0.03)
    state = {
        "opt": args,
        "model": model.state_dict(),
        "contrast": {"memory": torch.randn(16, 128), "params": torch.tensor([4096.0, 0.07])},
        "optimizer": optimizer.state_dict(),
        "epoch": 240,
        "model_ema": model_ema.state_dict(),
    }
    torch.save(state, path)
    return model, model_ema


def _reference_resnet(wrapper):
    from raypi.encoders.resnet import ResNetTokens

    resnet = wrapper.encoder.module
    return ResNetTokens(resnet)


def test_c2l_as_train_c2l_res18_saves_it(tmp_path):
    path = tmp_path / "ckpt_epoch_240.pth"
    model, model_ema = _c2l_checkpoint(path)
    name, weights = parse_weights(f"c2l={path}")  # what `raypi extract --weights` parses
    loaded = get_encoder(name).build(weights)
    report = loaded.load_report
    assert (report.entry, report.prefix) == ("model", "encoder.module.")
    assert report.dropped == ("encoder.* (2)",)  # the 128-d projection fc.weight, fc.bias
    for name, tensor in loaded.model.state_dict().items():
        torch.testing.assert_close(tensor, model.encoder.module.state_dict()[name])
    _same_forward(loaded, _reference_resnet(model))
    ema = get_encoder("c2l_ema").build(str(path))
    assert ema.load_report.entry == "model_ema"
    _same_forward(ema, _reference_resnet(model_ema))


def test_c2l_ema_without_an_ema_entry_names_the_entries(tmp_path):
    path = tmp_path / "no_ema.pth"
    model = _InsResNet18(3)
    torch.save({"opt": argparse.Namespace(c2l=False), "model": model.state_dict()}, path)
    with pytest.raises(WeightsError, match=r"no 'model_ema' entry.*\['model', 'opt'\]"):
        get_encoder("c2l_ema").build(str(path))


@pytest.mark.parametrize("name", ["medical_mae", "mrm"])
def test_mae_family_as_util_misc_save_model_saves_it(tmp_path, name):
    """Medical MAE and MRM ``util/misc.py save_model``: ``to_save = {'model':
    model_without_ddp.state_dict(), 'optimizer': …, 'epoch': …, 'scaler':
    loss_scaler.state_dict(), 'args': args}; save_on_master(to_save, checkpoint_path)``."""
    reference = _random(get_encoder(name).build(), seed=4)
    state = dict(reference.model.state_dict())
    state["mask_token"] = torch.zeros(1, 1, 512)
    state["decoder_embed.weight"] = torch.zeros(512, 768)
    if name == "mrm":
        state["bert_encoder.layer.0.weight"] = torch.zeros(4, 4)
    optimizer = torch.optim.AdamW([nn.Parameter(torch.zeros(2))], lr=1.5e-4)
    scaler = {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "_growth_tracker": 0}
    args = argparse.Namespace(model="mae_vit_base_patch16", mask_ratio=0.75, input_size=224)
    path = tmp_path / f"{name}.pth"
    torch.save(
        {"model": state, "optimizer": optimizer.state_dict(), "epoch": 799, "scaler": scaler,
         "args": args},
        path,
    )  # fmt: skip
    loaded = get_encoder(name).build(str(path))
    assert loaded.load_report.entry == "model"
    assert "decoder_embed.* (1)" in loaded.load_report.dropped
    _same_forward(loaded, reference)


def _fake_lightning():
    """A ``pytorch_lightning`` module with ModelCheckpoint, so the pickle names it as Lightning's
    does (Lightning 1.x keys ``checkpoint['callbacks']`` by the callback's class)."""
    package = types.ModuleType("pytorch_lightning")
    callbacks = types.ModuleType("pytorch_lightning.callbacks")
    module = types.ModuleType("pytorch_lightning.callbacks.model_checkpoint")

    class ModelCheckpoint:
        pass

    ModelCheckpoint.__module__ = module.__name__
    ModelCheckpoint.__qualname__ = "ModelCheckpoint"
    module.ModelCheckpoint = ModelCheckpoint
    return {m.__name__: m for m in (package, callbacks, module)}, ModelCheckpoint


def test_gloria_lightning_checkpoint_with_omegaconf_hparams(tmp_path, monkeypatch):
    """GLoRIA trains with Lightning's ModelCheckpoint: ``{'epoch', 'global_step',
    'pytorch-lightning_version', 'state_dict' ('gloria.img_encoder.model.*',
    'gloria.text_encoder.*'), 'callbacks', 'optimizer_states', 'lr_schedulers',
    'hyper_parameters': OmegaConf config}`` (marshuang80/gloria ``gloria/lightning``)."""
    omegaconf = pytest.importorskip("omegaconf")
    modules, model_checkpoint = _fake_lightning()
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    reference = _random(get_encoder("gloria").build(), seed=5)
    state = {f"gloria.img_encoder.model.{k}": v for k, v in reference.model.state_dict().items()}
    state["gloria.text_encoder.model.embeddings.word_embeddings.weight"] = torch.zeros(8, 4)
    config = omegaconf.OmegaConf.create(
        {"model": {"vision": {"model_name": "resnet_50", "pretrained": True}}, "lr": 5e-5}
    )
    path = tmp_path / "chexpert_resnet50.ckpt"
    torch.save(
        {"epoch": 20, "global_step": 1000, "pytorch-lightning_version": "1.1.4",
         "state_dict": state, "callbacks": {model_checkpoint: {"best_model_score": 0.3}},
         "optimizer_states": [], "lr_schedulers": [], "hyper_parameters": config},
        path,
    )  # fmt: skip
    for name in modules:  # raypi must read it without Lightning (or OmegaConf) importable
        monkeypatch.delitem(sys.modules, name)
    loaded = get_encoder("gloria").build(str(path))
    assert loaded.load_report.prefix == "gloria.img_encoder.model."
    assert loaded.load_report.dropped == ("gloria.* (1)",)
    _same_forward(loaded, reference)
    upstream = get_encoder("gloria_upstream").build(str(path))
    with torch.inference_mode():
        tokens = upstream.eval()(PIXELS)
    assert tuple(tokens.shape[1:]) == (361, 1024)


def test_biovil_t_image_model_state_dict(tmp_path):
    """hi-ml-multimodal publishes ``biovil_t_image_model_proj_size_128.pt``: the ImageModel's
    ``state_dict()`` saved with ``torch.save`` (loaded by ``ImageModel(pretrained_model_path=…)``
    with ``torch.load`` + ``load_state_dict``)."""
    reference = _random(get_encoder("biovil_t").build(), seed=6)
    path = tmp_path / "biovil_t_image_model_proj_size_128.pt"
    torch.save(reference.model.state_dict(), path)
    loaded = get_encoder("biovil_t").build(str(tmp_path))
    assert loaded.load_report.loaded == len(reference.model.state_dict())
    _same_forward(loaded, reference, torch.randn(1, 3, 448, 448))


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("suffix", [".pth", ".ckpt"])
def test_a_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path, suffix):
    marker = tmp_path / "ran"
    path = tmp_path / f"evil{suffix}"
    torch.save({"model": get_encoder("tiny_resnet").build().model.state_dict(),
                "opt": _RunsCode(marker)}, path)  # fmt: skip
    with pytest.raises(WeightsError, match=r"refused to unpickle posix\.system"):
        get_encoder("tiny_resnet").build(str(path))
    assert not marker.exists()


def test_rad_dino_processor_with_another_resample_or_step_is_refused(tmp_path):
    from raypi.encoders.dino import RAD_DINO_PROCESSOR, _check_processor

    path = tmp_path / "preprocessor_config.json"
    path.write_text(json.dumps(RAD_DINO_PROCESSOR))
    _check_processor(path)  # raypi's own numbers pass
    for change in ({"resample": 2}, {"do_center_crop": False}, {"rescale_factor": 1.0}):
        path.write_text(json.dumps({**RAD_DINO_PROCESSOR, **change}))
        with pytest.raises(WeightsError, match=next(iter(change))):
            _check_processor(path)


def _tiny_bert_folder(folder, name_or_path, spec="tiny_bert"):
    module = get_encoder(spec).build()
    folder.mkdir()
    config = json.loads(module.model.config.to_json_string())
    (folder / "config.json").write_text(json.dumps({**config, "_name_or_path": name_or_path}))
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in module.model.state_dict().items()},
              folder / "model.safetensors")  # fmt: skip
    vocab = module.tokenizer.get_vocab()
    (folder / "vocab.txt").write_text("\n".join(sorted(vocab, key=vocab.get)))


def test_a_folder_of_another_bert_is_refused(tmp_path):
    from raypi.encoders.text import TextEncoder, build_bert, load_hf_bert

    _tiny_bert_folder(tmp_path / "bert", "microsoft/BiomedVLP-CXR-BERT-specialized")
    module = build_bert(512, dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=128, max_position_embeddings=128))  # fmt: skip
    assert isinstance(module, TextEncoder)
    with pytest.raises(WeightsError, match="CXR-BERT-specialized.*not BioViL-T"):
        load_hf_bert(module, str(tmp_path / "bert"), identity=("BioViL-T",))
    load_hf_bert(module, str(tmp_path / "bert"), identity=("CXR-BERT-specialized",))


def test_bio_clinicalbert_stays_cased_without_a_tokenizer_config(tmp_path):
    from raypi.encoders.text import build_bert, load_hf_bert

    _tiny_bert_folder(tmp_path / "bert", "emilyalsentzer/Bio_ClinicalBERT")
    sizes = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=128, max_position_embeddings=128)  # fmt: skip
    cased, lower = build_bert(512, sizes), build_bert(512, sizes)
    load_hf_bert(cased, str(tmp_path / "bert"), identity=("Bio_ClinicalBERT",), lowercase=False)
    load_hf_bert(lower, str(tmp_path / "bert"), identity=("Bio_ClinicalBERT",), lowercase=True)
    assert cased.tokenizer.tokenize("Effusion") != lower.tokenizer.tokenize("Effusion")
    assert lower.tokenizer.tokenize("Effusion") == lower.tokenizer.tokenize("effusion")
