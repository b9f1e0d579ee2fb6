"""A character-level WordPiece tokenizer for BERT encoders built without weights (tests, demo)."""

from __future__ import annotations

import string

SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def fallback_tokenizer(vocab_size: int):
    """Return a BERT-style fast tokenizer over characters, padded to ``vocab_size`` entries.

    Real encoders load their own ``vocab.txt`` with their weights; this one only lets a
    randomly initialised encoder run end to end (ids stay below ``vocab_size``).

    Args:
        vocab_size: Size of the embedding table the ids must fit.

    Returns:
        A ``transformers.PreTrainedTokenizerFast``.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = list(SPECIAL) + chars + [f"##{c}" for c in chars]
    vocab += [f"[unused{i}]" for i in range(vocab_size - len(vocab))]
    if len(vocab) > vocab_size:
        raise ValueError(f"vocab_size {vocab_size} < {len(vocab)} characters of the fallback")
    tokenizer = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
