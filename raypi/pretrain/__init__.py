"""Pre-train the demo's tiny encoders on the demo's own data, in plain PyTorch (no sweep).

The study's encoders were pre-trained by their authors on chest radiographs and reports
(MIMIC-CXR among them); the demo's are pre-trained here, the same way, on the demo's separate
pre-training draw (``raypi.data._demo_pretrain``: other patients, reports the tasks do not use;
never a label, an image or a report any trial trains or validates on), one per family:

=================  ==========================================  ============================
encoder            objective (family)                          saved as (read by)
=================  ==========================================  ============================
``demo_bert``      WordPiece vocabulary + masked-language       Hugging Face BERT folder
                   modelling on the reports (CXR-BERT's)        (``load_hf_bert``)
``demo_vit_ssl``   SimCLR between augmented views, images only  MAE ``save_model`` checkpoint
                   (self-supervised: RAD-DINO, MRM, MAE, C2L)   (``load_mae_checkpoint``)
``demo_vit_clip``  CLIP between each image and its report       open_clip folder
                   through ``demo_bert`` (BioViL-T, BiomedCLIP) (``load_open_clip_folder``)
=================  ==========================================  ============================

``tiny_vit`` (random initialisation) is the "no pre-training" control. Weights go to
``$RAYPI_HOME/weights/<encoder>/`` with ``pretrain.json`` (recipe, seed, data, loss per
epoch, weights hash) beside them; they are built once and reused while the recipe and the
data stay the same. ``make demo`` builds them on first use; ``raypi pretrain`` on demand.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path

from raypi.pretrain.recipes import BERT_RECIPE, CLIP_RECIPE, SSL_RECIPE, Recipe

RECIPES: dict[str, Recipe] = {r.encoder: r for r in (BERT_RECIPE, SSL_RECIPE, CLIP_RECIPE)}
"""Demo encoder → its recipe, in the order they must be built (CLIP reads ``demo_bert``)."""

__all__ = ["RECIPES", "Recipe", "ensure_pretrained", "pretrain", "weights_folder"]


def weights_folder(encoder: str, home: str | Path | None = None) -> Path:
    """Return where a demo encoder's weights live: ``<home>/weights/<encoder>``."""
    from raypi.paths import home as default_home

    return Path(home or default_home()) / "weights" / encoder


def pretrain(
    dataset_root: str,
    encoders: list[str] | None = None,
    *,
    seed: int = 0,
    home: str | Path | None = None,
    recipes: dict[str, Recipe] | None = None,
) -> dict[str, dict]:
    """Pre-train demo encoders and write their weights (replacing what is there).

    Args:
        dataset_root: The demo dataset (``raypi demo-data``); the encoders learn from its
            pre-training draw (built here where missing).
        encoders: Names from ``RECIPES`` (all when None); ``demo_bert`` is built first when a
            CLIP encoder needs it and it is missing.
        seed: Seed of every recipe; the same seed and data give the same weights.
        home: raypi's data home (``$RAYPI_HOME`` when None).
        recipes: Recipes to use instead of ``RECIPES`` (tests shorten the epochs).

    Returns:
        Encoder → the ``pretrain.json`` record written.
    """
    from raypi.data._demo_pretrain import ensure_pretrain_draw
    from raypi.encoders import get_encoder
    from raypi.pretrain._common import data_identity, load_images, load_reports, write_outcome
    from raypi.pretrain.image import pretrain_clip, pretrain_ssl
    from raypi.pretrain.text import pretrain_bert

    recipes = {**RECIPES, **(recipes or {})}
    names = list(recipes) if encoders is None else list(encoders)
    unknown = sorted(set(names) - set(recipes))
    if unknown:
        raise ValueError(f"no pre-training recipe for {unknown}; known: {sorted(recipes)}")
    from raypi.pretrain._common import read_record

    source = ensure_pretrain_draw(dataset_root)
    data = data_identity(source)
    records, images = {}, {}
    for name in sorted(names, key=list(recipes).index):
        recipe, started = recipes[name], time.perf_counter()
        spec = get_encoder(name)
        if recipe.objective == "mlm":
            outcome = pretrain_bert(load_reports(source), seed, recipe)
        else:
            key = spec.preprocessing
            if key not in images:
                images[key] = load_images(source, spec.preprocess, name)
            if recipe.objective == "simclr":
                outcome = pretrain_ssl(images[key], seed, recipe)
            else:
                text = recipe.options["text_encoder"]
                if not _current(text, recipes[text], seed, data, home):
                    records |= pretrain(dataset_root, [text], seed=seed, home=home, recipes=recipes)
                text_folder = str(weights_folder(text, home))
                outcome = pretrain_clip(
                    images[key], load_reports(source), text_folder, seed, recipe
                )
        extra = {}
        if recipe.objective == "clip":  # stale once its text encoder changes
            text_record = read_record(weights_folder(recipe.options["text_encoder"], home))
            extra["text_weights_sha256"] = text_record["weights_sha256"]
        folder = weights_folder(name, home)
        records[name] = write_outcome(
            folder, recipe, outcome, seed, data, time.perf_counter() - started, **extra
        )
        print(
            f"raypi pretrain: {name} ({recipe.objective}) written to {folder} in "
            f"{records[name]['seconds']:.0f} s; loss {outcome.losses[0]:.3f} -> "
            f"{outcome.losses[-1]:.3f}",
            file=sys.stderr,
        )
    return records


def ensure_pretrained(
    dataset_root: str, encoders: list[str], *, seed: int = 0, home: str | Path | None = None
) -> list[str]:
    """Pre-train those of ``encoders`` that are demo encoders without current weights.

    Weights are current when their ``pretrain.json`` holds today's recipe, this seed and this
    dataset's identity (and, for CLIP, the text encoder weights it was aligned with); anything
    else is rebuilt, text encoders first.

    Returns:
        The encoders that were (re)built.
    """
    from raypi.data._demo_pretrain import ensure_pretrain_draw
    from raypi.pretrain._common import data_identity

    data = data_identity(ensure_pretrain_draw(dataset_root))
    built = []
    # In recipe order, each checked after what it reads was rebuilt (CLIP after its text).
    for name in sorted((n for n in encoders if n in RECIPES), key=list(RECIPES).index):
        if not _current(name, RECIPES[name], seed, data, home):
            pretrain(dataset_root, [name], seed=seed, home=home)
            built.append(name)
    return built


def _current(name: str, recipe: Recipe, seed: int, data: dict, home) -> bool:
    from raypi.pretrain._common import read_record

    record = read_record(weights_folder(name, home))
    if not (
        record
        and record.get("recipe") == asdict(recipe)
        and record.get("seed") == seed
        and record.get("data") == data
    ):
        return False
    text = recipe.options.get("text_encoder")
    if text is None:
        return True
    text_record = read_record(weights_folder(text, home))
    return bool(text_record) and record.get("text_weights_sha256") == text_record["weights_sha256"]
