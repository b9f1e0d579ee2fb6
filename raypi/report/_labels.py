"""Readable names, orders and colours for tasks, encoders, methods, heads and metrics."""

from __future__ import annotations

from collections.abc import Iterable

from raypi.heads import HEAD_TABLE, IMAGE_HEADS

# Display names of the study's and the demo's encoders; other encoders keep their own name.
ENCODER_TITLES = {
    "rad_dino": "RAD-DINO",
    "c2l": "C2L",
    "medical_mae": "Medical MAE",
    "mrm": "MRM",
    "biovil_t": "BioViL-T",
    "gloria": "GLoRIA",
    "biomedclip": "BiomedCLIP",
    "cxr_bert": "CXR-BERT (BioViL-T)",
    "cxr_bert_general": "CXR-BERT-general",
    "bio_clinicalbert": "Bio_ClinicalBERT",
    "tiny_vit": "Tiny ViT",
    "tiny_resnet": "Tiny ResNet",
    "tiny_bert": "Tiny BERT",
    "demo_vit_ssl": "Demo ViT (self-supervised)",
    "demo_vit_clip": "Demo ViT (image-report)",
    "demo_bert": "Demo BERT (MLM)",
}
METHOD_TITLES = {
    "image": "Image-only",
    "teacher": "Teacher (image + report)",
    "distill": "Distilled",
    "self_distill": "Self-distilled",
    "text": "Text-only",
}
METHOD_ORDER = ("image", "teacher", "distill", "self_distill")
METHOD_COLORS = {
    "image": "#7f7f7f",
    "teacher": "#2ca02c",
    "distill": "#1f77b4",
    "self_distill": "#ff7f0e",
}
HEAD_TITLES = {name: HEAD_TABLE[name].title for name in IMAGE_HEADS}
"""Titles of the image heads (the ``head`` column), in the study's order (``raypi.heads``)."""
METRIC_TITLES = {"auc": "AUC", "auprc": "AUPRC"}
_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
)


def task_title(name: str) -> str:
    """Return a task's title from its spec (``raypi.tasks``), or a tidied name."""
    try:
        from raypi.tasks import get_task

        return str(get_task(name).title)
    except Exception:  # noqa: BLE001 - an unknown or unregistered task still gets a label
        return str(name).replace("_", " ").capitalize()


def encoder_title(name: object) -> str:
    """Return an encoder's display name (e.g. ``rad_dino`` → ``RAD-DINO``)."""
    if name is None or (isinstance(name, float) and name != name):
        return "none"
    return ENCODER_TITLES.get(name, str(name))


def method_title(name: str) -> str:
    """Return a method's display name (``distill`` → ``Distilled``)."""
    return METHOD_TITLES.get(name, str(name))


def head_title(name: str) -> str:
    """Return a head's display name (``mean_lp`` → ``Mean-LP``)."""
    return HEAD_TITLES.get(name, str(name))


def metric_title(metric: str) -> str:
    """Return a metric's display name (``auprc`` → ``AUPRC``)."""
    return METRIC_TITLES.get(metric, metric.upper())


def encoder_order(names: Iterable[str]) -> list[str]:
    """Return encoder names in the study's order, unknown names after them alphabetically."""
    known = list(ENCODER_TITLES)
    unique = {str(name) for name in names}
    return sorted(unique, key=lambda n: (known.index(n) if n in known else len(known), n))


def encoder_color(name: str) -> str:
    """Return a fixed colour per encoder, the same in every figure."""
    known = list(ENCODER_TITLES)
    index = known.index(name) if name in known else len(known) + sum(map(ord, name))
    return _PALETTE[index % len(_PALETTE)]


def series_colors(values: Iterable[object]) -> dict[object, str]:
    """Return distinct colours for the values of an ablation (heads, τ, text encoders)."""
    return {value: _PALETTE[i % len(_PALETTE)] for i, value in enumerate(values)}


def task_rank(name: object) -> tuple[int, str]:
    """Return a sort key putting tasks in the registry's (the study's) order, unknown ones last."""
    try:
        from raypi.tasks import TASKS

        known = list(TASKS)
    except Exception:  # noqa: BLE001 - without the registry, alphabetical order
        known = []
    return (known.index(name) if name in known else len(known), str(name))


def _rank(value: object) -> tuple:
    if isinstance(value, str):
        return (encoder_order([*ENCODER_TITLES, value]).index(value), value)
    return (0, value)


def ordered_panels(panels: list[tuple[tuple, object]]) -> list[tuple[tuple, object]]:
    """Sort ``((task, size or encoder), group)`` panels by task order, then size or encoder."""
    return sorted(panels, key=lambda panel: (task_rank(panel[0][0]), _rank(panel[0][1])))
