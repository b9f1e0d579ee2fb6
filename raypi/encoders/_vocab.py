"""A WordPiece tokenizer for BERT encoders built without weights (tests, demo).

Common chest-radiograph words are whole tokens; everything else falls back to characters.
Whole words keep a report short (about one token per word), so a 128-token tiny encoder sees
most of a report instead of its first 128 characters.
"""

from __future__ import annotations

import string

SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
RADIOLOGY_WORDS = tuple(
    """
    the no of and is are there with in to a or on at be as by for from this that not which
    seen noted identified present without normal unremarkable stable unchanged new since prior
    previous comparison compared increased decreased interval improved worsened mild mildly
    moderate moderately severe small large minimal slight trace possible possibly likely
    probable suggest suggests suspicious consistent concerning cannot excluded evidence acute
    chronic old left right bilateral both lower upper middle mid base bases basilar apex apical
    lobe lobes lung lungs pulmonary heart cardiac cardiomediastinal mediastinal mediastinum
    silhouette size contour contours hilar hila aorta aortic tortuous tortuosity ectatic
    calcified calcification calcifications atherosclerotic vascular vasculature congestion
    edema effusion effusions pleural pneumothorax consolidation consolidations opacity
    opacities airspace disease infiltrate infiltrates atelectasis atelectatic scarring
    scar fibrosis nodule nodules nodular mass granuloma granulomas granulomatous emphysema
    hyperinflated hyperinflation hyperexpanded copd obstructive pneumonia infection
    cardiomegaly enlarged enlargement borderline clear focal diffuse patchy streaky linear
    costophrenic angle angles blunting blunted diaphragm hemidiaphragm elevation elevated
    thoracic spine vertebral degenerative changes osseous structures bony fracture fractures
    rib ribs deformity soft tissue tissues surgical clips sternotomy wires median catheter
    tube line lines pacemaker leads device devices port tip terminates projects svc atrium
    chest pa lateral view views frontal radiograph radiographs exam examination findings
    impression limited technique portable upright supine inspiration low volumes volume
    markings prominence prominent interstitial reticular pattern hazy haziness density
    densities air fluid free subdiagraphic abdomen upper visualized visible appear appears
    appearance otherwise within limits grossly definite definitely focus process
    abnormality abnormalities silhouetting obscured obscuration overlying related due
    """.split()
)
"""Whole-word tokens of the fallback vocabulary (common chest-radiograph report words)."""


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
    room = max(0, vocab_size - len(vocab))
    vocab += [word for word in dict.fromkeys(RADIOLOGY_WORDS) if word not in vocab][:room]
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
