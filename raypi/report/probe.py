"""What each image encoder's frozen features hold of the demo's hidden causes: linear probes.

A student can only learn what the image encoder's features hold (E[teacher | image], Lopez-Paz
et al. 2016). On the demo the causes are known (``gt_*`` columns, ``raypi.data.demo``), so the
report measures, per image encoder of the results, how much of the report-only hidden groups
(what the prognostic teacher knows beyond the image) and of age (the auxiliary label) a linear
model (ridge regression; its score's AUC for "any hidden group") reads from the frozen features
of the unaugmented view: cross-validated over 5 patient-grouped folds of the demo's images,
with raw downsampled pixels beside them as what the image holds at all.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from raypi.methods import METHOD_TABLE
from raypi.report import _columns as col

FOLDS = 5
PIXELS = 16
"""Side of the raw-pixel baseline (block means of the 256-pixel radiographs)."""
COLUMNS = ["Features", "Hidden groups: R²", "Any hidden group: AUC", "Age: R²", "Images"]


def _sources(trials: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(dataset root, feature store, encoder) of the demo trials that read images."""
    reads = trials[col.METHOD].map(lambda m: METHOD_TABLE[m].reads_image if m in METHOD_TABLE
                                   else False)  # fmt: skip
    demo = trials[(trials[col.DATASET] == "demo") & reads & trials[col.ENCODER].notna()]
    if demo.empty:
        return []
    keys = demo[["dataset_root", "features", col.ENCODER]].drop_duplicates()
    return sorted(tuple(map(str, key)) for key in keys.itertuples(index=False))


def _scores(x: np.ndarray, frame: pd.DataFrame) -> dict:
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score, roc_auc_score
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folds = GroupKFold(n_splits=FOLDS)
    groups = frame["patient_id"].to_numpy()
    alphas = np.logspace(-1, 4, 12)

    def predicted(target):
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=alphas))
        return cross_val_predict(model, x, target, cv=folds, groups=groups)

    hidden, age = frame["gt_hidden"].to_numpy(float), frame["gt_age"].to_numpy(float)
    anyone = (hidden > 0).astype(float)
    return {
        "Hidden groups: R²": r2_score(hidden, predicted(hidden)),
        "Any hidden group: AUC": roc_auc_score(anyone, predicted(anyone)),
        "Age: R²": r2_score(age, predicted(age)),
        "Images": len(frame),
    }


def _pixels(root: str, frame: pd.DataFrame) -> np.ndarray:
    from raypi.data import tables

    images = [tables.read_image(root, path).astype(np.float32) for path in frame["image_path"]]
    side = images[0].shape[0] // PIXELS
    return np.stack([im.reshape(PIXELS, side, PIXELS, side).mean(axis=(1, 3)).ravel()
                     for im in images])  # fmt: skip


def probe_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Return one row per image encoder of the demo results (and raw pixels): probe scores.

    Args:
        trials: The trials table (its ``dataset_root`` and ``features`` columns locate the
            demo's tables and feature store).

    Returns:
        Columns ``COLUMNS``; empty when the results hold no demo trials or the demo's tables
        lack the ground truth (an older generator design).
    """
    from raypi.data import tables
    from raypi.features import load
    from raypi.report import _labels

    rows, seen = [], set()
    for root, store, encoder in _sources(trials):
        frame = tables.read_dataset(root)
        if not {"gt_hidden", "gt_age"} <= set(frame.columns):
            continue
        if root not in seen:
            seen.add(root)
            rows.append({"Features": f"raw pixels ({PIXELS}×{PIXELS} block means)",
                         **_scores(_pixels(root, frame), frame)})  # fmt: skip
        tokens = load(store, encoder, list(frame["image_id"]), views=0, dtype=None).float()
        x = torch_features(tokens)
        rows.append({"Features": _labels.encoder_title(encoder), **_scores(x, frame)})
    return pd.DataFrame(rows, columns=COLUMNS)


def torch_features(tokens) -> np.ndarray:
    """Return the probe's input from frozen tokens ``[N, T, D]``: first token and token mean."""
    return np.concatenate([tokens[:, 0].numpy(), tokens.mean(dim=1).numpy()], axis=1)


def probe_lines(table: pd.DataFrame) -> list[str]:
    """Return one printable line per probed feature set."""
    return [
        f"Probe {row['Features']}: hidden groups R² {row['Hidden groups: R²']:.2f}, any hidden "
        f"group AUC {row['Any hidden group: AUC']:.2f}, age R² {row['Age: R²']:.2f}"
        for _, row in table.iterrows()
    ]
