"""``demo_bert``: a WordPiece vocabulary and a tiny BERT learned from the demo reports by MLM.

Saved as a Hugging Face folder exactly as ``BertForMaskedLM.save_pretrained`` and
``BertTokenizerFast.save_pretrained`` write it (config.json, model.safetensors, vocab.txt,
tokenizer files) — the layout of CXR-BERT's and Bio_ClinicalBERT's folders — so
``raypi.encoders.text.load_hf_bert`` reads it like the real ones (dropping the MLM head).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from raypi.pretrain._common import Outcome, seeded, train
from raypi.pretrain.recipes import BERT_RECIPE as RECIPE
from raypi.pretrain.recipes import Recipe

SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def train_wordpiece(reports: list[str], vocab_size: int, min_frequency: int):
    """Learn a lowercasing BERT WordPiece vocabulary from the reports.

    The reports are normalised and split into words by BERT's own normaliser and
    pre-tokenizer (Hugging Face ``tokenizers``); the vocabulary holds the special tokens,
    every character seen (word-initial and ``##`` continuation, so nothing is unknown), then
    the most frequent words (at least ``min_frequency`` uses; ties alphabetical) up to
    ``vocab_size``. ``tokenizers``' own WordPiece trainer is not used: its merges break ties
    in hash-map order, so two runs on the same reports give different vocabularies.

    Returns:
        A ``transformers.BertTokenizerFast`` over the learned vocabulary.
    """
    from collections import Counter

    from tokenizers import normalizers, pre_tokenizers
    from transformers import BertTokenizerFast

    normalizer = normalizers.BertNormalizer(lowercase=True)
    splitter = pre_tokenizers.BertPreTokenizer()
    counts = Counter(
        word
        for text in reports
        for word, _ in splitter.pre_tokenize_str(normalizer.normalize_str(text))
    )
    chars = sorted({char for word in counts for char in word})
    vocab = [*SPECIAL, *chars, *(f"##{char}" for char in chars)]
    if len(vocab) > vocab_size:
        raise ValueError(f"vocab_size {vocab_size} < {len(vocab)} characters of the reports")
    words = sorted(
        (w for w, n in counts.items() if n >= min_frequency and len(w) > 1),
        key=lambda w: (-counts[w], w),
    )
    vocab += words[: vocab_size - len(vocab)]
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "vocab.txt").write_text("".join(f"{token}\n" for token in vocab))
        return BertTokenizerFast.from_pretrained(folder, do_lower_case=True)


def mask_tokens(ids: torch.Tensor, special: torch.Tensor, tokenizer, share: float, generator):
    """Mask a batch as BERT does.

    ``share`` of the ordinary tokens are predicted; of those 80 % become [MASK], 10 % a random
    token, and 10 % stay.

    Returns:
        (inputs, labels) with labels -100 where nothing is predicted.
    """
    chosen = (torch.rand(ids.shape, generator=generator) < share) & ~special
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    inputs = ids.clone()
    draw = torch.rand(ids.shape, generator=generator)
    inputs[chosen & (draw < 0.8)] = tokenizer.mask_token_id
    swap = chosen & (draw >= 0.8) & (draw < 0.9)
    inputs[swap] = torch.randint(len(SPECIAL), len(tokenizer), ids.shape, generator=generator)[swap]
    return inputs, labels


def pretrain_bert(reports: list[str], seed: int, recipe: Recipe = RECIPE) -> Outcome:
    """Learn the vocabulary and pre-train ``demo_bert`` by masked-language modelling.

    Args:
        reports: The demo reports.
        seed: Seed of the initialisation, the batch order and the masks.
        recipe: Epochs, batch size, learning rate and options.

    Returns:
        The Hugging Face folder's files, the loss per epoch and the encoder's tensors.
    """
    from transformers import BertConfig, BertForMaskedLM

    from raypi.encoders.text import DEMO_VOCAB_SIZE, TINY

    options = recipe.options
    tokenizer = train_wordpiece(reports, DEMO_VOCAB_SIZE, options["min_frequency"])
    encoded = tokenizer(
        reports, truncation=True, max_length=options["max_length"], return_special_tokens_mask=True
    )
    generator = torch.Generator().manual_seed(seed)

    def loss_of(index):
        ids, special, mask = _pad(encoded, index.tolist(), tokenizer.pad_token_id)
        inputs, labels = mask_tokens(ids, special, tokenizer, options["mask_share"], generator)
        return _masked_lm_loss(model, inputs, mask, labels)

    with seeded(seed):
        model = BertForMaskedLM(BertConfig(vocab_size=DEMO_VOCAB_SIZE, **TINY))
        _, losses = train([model], loss_of, len(reports), recipe, generator, "MLM")
    return Outcome(files=_hf_folder(model, tokenizer), losses=losses, state=model.bert.state_dict())


def _masked_lm_loss(model, inputs, mask, labels) -> torch.Tensor:
    """Return BertForMaskedLM's loss, scoring the vocabulary only where a token is predicted."""
    hidden = model.bert(input_ids=inputs, attention_mask=mask).last_hidden_state
    predicted = labels != -100
    logits = model.cls(hidden[predicted])
    return torch.nn.functional.cross_entropy(logits, labels[predicted])


def _pad(encoded, rows: list[int], pad_id: int):
    """Pad one batch to its longest report: (ids, special-token mask, attention mask)."""
    length = max(len(encoded["input_ids"][row]) for row in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    special = torch.ones((len(rows), length), dtype=torch.bool)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row in enumerate(rows):
        tokens = encoded["input_ids"][row]
        ids[i, : len(tokens)] = torch.tensor(tokens)
        special[i, : len(tokens)] = torch.tensor(encoded["special_tokens_mask"][row], dtype=bool)
        mask[i, : len(tokens)] = 1
    return ids, special, mask


def _hf_folder(model, tokenizer) -> dict[str, bytes]:
    from raypi.encoders._hf import quiet_transformers

    with tempfile.TemporaryDirectory() as folder, quiet_transformers():
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        # BERT folders carry vocab.txt (one token per line, by id); recent transformers
        # write only tokenizer.json, so the upstream file is written too.
        vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
        (Path(folder) / "vocab.txt").write_text("".join(f"{token}\n" for token, _ in vocab))
        return {path.name: path.read_bytes() for path in Path(folder).iterdir() if path.is_file()}
