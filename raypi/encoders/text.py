"""BERT text encoders (transformers): CXR-BERT, CXR-BERT-general, Bio_ClinicalBERT, tiny_bert."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
from torch import nn

from raypi.encoders._hf import load_hf_folder
from raypi.encoders.registry import register
from raypi.encoders.spec import EncoderSpec, ResourceHint
from raypi.encoders.weights import LoadReport, WeightsError

BERT_BASE = dict(
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    max_position_embeddings=512,
)
TINY = dict(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=128,
    max_position_embeddings=128,
)
# Heads of the published checkpoints (CXR-BERT: BertForMaskedLM + projection head;
# Bio_ClinicalBERT: BertForPreTraining) that token features do not use: dropped, reported.
HEADS = ("cls.", "cls_projection_head.", "pooler.", "bert.pooler.")


class TextEncoder(nn.Module):
    """A transformers ``BertModel`` (no pooler) plus its tokenizer."""

    def __init__(self, model: nn.Module, tokenizer):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Return the last hidden states [B, L, D] of token ids [B, L]."""
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    @torch.inference_mode()
    def encode(self, texts: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenize (pad to ``max_length``, truncate) and encode texts.

        Args:
            texts: Reports.
            max_length: Token length L, special tokens included.

        Returns:
            tokens [B, L, D] zeroed beyond each length, and lengths int64 [B] (on the
            module's device).
        """
        batch = self.tokenizer(
            [text or "" for text in texts],
            padding="max_length",
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        device = next(self.parameters()).device
        mask = batch["attention_mask"].to(device)
        hidden = self(batch["input_ids"].to(device), mask)
        return hidden * mask.unsqueeze(-1).to(hidden.dtype), mask.sum(dim=1)


def build_bert(vocab_size: int, sizes: dict) -> TextEncoder:
    """Return a random-init ``BertModel`` with the fallback tokenizer (real ones: with weights)."""
    from transformers import BertConfig, BertModel

    from raypi.encoders._vocab import fallback_tokenizer

    config = BertConfig(vocab_size=vocab_size, **sizes)
    return TextEncoder(BertModel(config, add_pooling_layer=False), fallback_tokenizer(vocab_size))


def load_hf_bert(
    module: TextEncoder,
    path: str,
    identity: tuple[str, ...] = (),
    lowercase: bool | None = None,
) -> LoadReport:
    """Load a Hugging Face BERT folder: weights (safetensors or old-style .bin) and tokenizer.

    Args:
        module: A :class:`TextEncoder`.
        path: Folder with ``config.json``, ``model.safetensors`` or ``pytorch_model.bin``, and
            ``vocab.txt`` (or ``tokenizer.json``).
        identity: Words of which one must appear in the folder's ``config.json``
            ``_name_or_path`` when it names a model (e.g. ``BioViL-T``): a folder of another
            published BERT is refused instead of silently giving other features.
        lowercase: Lowercase reports before tokenizing when the folder has no
            ``tokenizer_config.json`` saying it (None = transformers' default, lowercase).

    Returns:
        The load report; ``module.tokenizer`` is replaced by the folder's tokenizer.
    """
    from transformers import BertTokenizer

    folder = Path(path)
    if not any((folder / name).is_file() for name in ("vocab.txt", "tokenizer.json")):
        raise WeightsError(f"{folder}: expected a tokenizer (vocab.txt or tokenizer.json)")
    _check_identity(folder / "config.json", identity)
    report = load_hf_folder(module, path, drop=HEADS, add_pooling_layer=False)
    casing = {}
    if lowercase is not None and not (folder / "tokenizer_config.json").is_file():
        casing = {"do_lower_case": lowercase}
    module.tokenizer = BertTokenizer.from_pretrained(str(folder), **casing)
    if len(module.tokenizer) > module.model.config.vocab_size:
        raise WeightsError(
            f"{folder}: tokenizer has {len(module.tokenizer)} tokens, the model "
            f"embeds {module.model.config.vocab_size}"
        )
    return report


def _check_identity(config_file: Path, identity: tuple[str, ...]) -> None:
    """Refuse a folder whose config names another model than the slot expects."""
    if not identity or not config_file.is_file():
        return
    import json

    config = json.loads(config_file.read_text())
    named = str(config.get("_name_or_path") or "")
    if named and not any(word.lower() in named.lower() for word in identity):
        raise WeightsError(
            f"{config_file}: the folder says it holds {named!r}, not {' / '.join(identity)}; "
            "pass the folder under the encoder name it is (see `raypi encoders`)"
        )


def _bert_entry(
    name: str, vocab_size: int, source: str, description: str, **loader_options
) -> EncoderSpec:
    return EncoderSpec(
        name=name,
        kind="text",
        family="bert",
        token_shape=(512, 768),
        input_size=512,
        weights_hint=f"Hugging Face folder of {source} (config.json, model.safetensors or "
        f"pytorch_model.bin, vocab.txt) at $RAYPI_HOME/weights/{name}",
        hint=ResourceHint(gpu_memory_gb=2.0, batch_size=128),
        description=description,
        factory=partial(build_bert, vocab_size, BERT_BASE),
        loader=partial(load_hf_bert, **loader_options),
    )


register(
    _bert_entry(
        "cxr_bert",
        30522,
        "microsoft/BiomedVLP-BioViL-T",
        "BioViL-T's CXR-BERT as transformers BertModel: last hidden states x 768 "
        "(a folder whose config names another model, e.g. CXR-BERT-specialized, is refused)",
        identity=("BioViL-T",),
    )
)
register(
    _bert_entry(
        "cxr_bert_general",
        30522,
        "microsoft/BiomedVLP-CXR-BERT-general",
        "CXR-BERT-general as transformers BertModel: last hidden states x 768",
        identity=("CXR-BERT-general",),
    )
)
register(
    _bert_entry(
        "bio_clinicalbert",
        28996,
        "emilyalsentzer/Bio_ClinicalBERT",
        "Bio_ClinicalBERT (BERT-base, cased vocab, reports kept cased as pre-trained; the "
        "upstream folder has no tokenizer config): last hidden states x 768",
        identity=("Bio_ClinicalBERT",),
        lowercase=False,
    )
)
register(
    _bert_entry(
        "bio_clinicalbert_lowercase",
        28996,
        "emilyalsentzer/Bio_ClinicalBERT",
        "Bio_ClinicalBERT with lowercased reports (what transformers' default tokenizer does "
        "with the upstream folder): last hidden states x 768",
        identity=("Bio_ClinicalBERT",),
        lowercase=True,
    )
)
register(
    EncoderSpec(
        name="tiny_bert",
        kind="text",
        family="bert",
        token_shape=(128, 64),
        input_size=128,
        weights_hint="Hugging Face BERT folder of tiny_bert (tests and demo only)",
        hint=ResourceHint(gpu_memory_gb=0.5, batch_size=256),
        description="tiny test/demo BertModel: 2 layers, width 64, word + char vocabulary",
        factory=partial(build_bert, 512, TINY),
        loader=load_hf_bert,
        tiny=True,
    )
)

DEMO_VOCAB_SIZE = 1024
"""WordPiece vocabulary of ``demo_bert``, trained on the demo reports (``raypi pretrain``)."""

register(
    EncoderSpec(
        name="demo_bert",
        kind="text",
        family="bert",
        token_shape=(128, 64),
        input_size=128,
        weights_hint="Hugging Face BERT folder (config.json, model.safetensors, vocab.txt) that "
        "`raypi pretrain` writes to $RAYPI_HOME/weights/demo_bert (demo only)",
        hint=ResourceHint(gpu_memory_gb=0.5, batch_size=256),
        description="tiny_bert's shape with a WordPiece vocabulary trained on the demo reports, "
        "pre-trained by masked-language modelling on them: the demo's CXR-BERT",
        factory=partial(build_bert, DEMO_VOCAB_SIZE, TINY),
        loader=load_hf_bert,
        tiny=True,
        demo_pretrained=True,
    )
)
