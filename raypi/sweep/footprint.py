"""A trial's footprint, known before it runs: token shapes, views, rows, bytes read and FLOP.

The FLOP model counts the reference attention head (``raypi.train._flops``): per trial,
``epochs × (3 × forward × train rows + forward × validation rows)``, with the report branch
added for models that read reports. Bytes are what the trial reads from the feature store
(fp16 tokens of its training rows × views, validation rows, report tokens). Nothing here reads
features or starts Ray. Token shapes come from the store's manifest when
there is one (tokens may be pooled), else from the encoder registry; views from the trial, else
the manifest; validation sizes from the task table when it can be read here, else from the
study's numbers. The pack planner (``sweep.packs``), the dry run (``sweep.cost``) and the
resource requests (``sweep.resources``) all ask here.
"""

from __future__ import annotations

from dataclasses import dataclass

from raypi import io
from raypi.methods import METHOD_TABLE
from raypi.sweep.grid import TrialConfig

BYTES_PER_VALUE = 2  # fp16 tokens in the store


def token_shape(name: str, store: str, remote: bool = False) -> tuple[int, int]:
    """Return the ``(T, D)`` tokens of encoder ``name`` served from ``store``.

    Args:
        name: Encoder name.
        store: Feature store folder (may be empty).
        remote: Read a remote store's manifest too (False: a remote store's shape comes from
            the registry, so nothing is read over the network).

    Returns:
        The manifest's shape when the store has one, else the registry's.
    """
    from raypi.encoders import get_encoder
    from raypi.features import store as feature_store

    manifest = feature_store.find_manifest(store, name, remote=remote)
    shape = None if manifest is None else feature_store.token_shape(manifest)
    return shape or tuple(get_encoder(name).token_shape)


def views_read(trial: TrialConfig) -> int:
    """Return the rows read per training image: view 0 and the augmented views the trial uses."""
    if trial.views is not None:
        return trial.views + 1
    from raypi.features import store as feature_store

    manifest = feature_store.find_manifest(trial.features, trial.encoder or "", remote=False)
    return 1 if manifest is None else max(1, len(feature_store.stored_views(manifest) or [0]))


def validation_rows(trial: TrialConfig) -> int:
    """Return the trial's validation rows: its split when readable here, else the study's."""
    from raypi.tasks import get_task

    if trial.dataset_root and not io.is_remote(trial.dataset_root):
        try:
            from raypi.sweep._inputs import read_split

            return len(read_split(trial.dataset_root, trial.task, trial.seed).val_ids)
        except (OSError, ValueError, KeyError):
            pass
    spec = get_task(trial.task)
    if spec.fixed_split is not None:
        return spec.fixed_split["val_per_class"] * spec.num_classes
    return round((spec.images or 0) * spec.val_share)


def trial_flop(forward: float, size: int, epochs: int, val: int) -> float:
    """Return a trial's FLOP: each epoch trains on ``size`` rows (3× a forward) and validates.

    Args:
        forward: Forward FLOP per sample of the trial's model.
        size: Training rows.
        epochs: Epochs.
        val: Validation rows.

    Returns:
        FLOP of the whole trial.
    """
    return float(epochs * (3 * forward * size + forward * val))


@dataclass(frozen=True)
class TrialWork:
    """What one trial reads and computes."""

    bytes_read: int
    """Feature bytes read from the store (its own, as if it ran alone)."""
    flop: float
    """Training and validation FLOP (reference attention head)."""
    executed_flop: float
    """The FLOP raypi's heads execute (merged scores, pooled values; ``train._flops``)."""


def trial_work(trial: TrialConfig) -> TrialWork:
    """Return the bytes one trial reads and the FLOP it computes."""
    from raypi.train._flops import attention_reference_flops, batch_flops

    method = METHOD_TABLE[trial.method]
    val = validation_rows(trial)
    forward, executed, read, batch = 0.0, 0.0, 0, trial.batch_size
    if method.reads_image:
        tokens, dim = token_shape(trial.encoder, trial.features)
        forward += attention_reference_flops(tokens, dim)
        executed += batch_flops(trial.head, tokens, dim, batch) / batch
        read += (trial.size * views_read(trial) + val) * tokens * dim * BYTES_PER_VALUE
    if method.reads_report:
        length, width = token_shape(trial.text_encoder, trial.features)
        forward += attention_reference_flops(length, width)
        executed += batch_flops("text", length, width, batch) / batch
        read += (trial.size + val) * length * width * BYTES_PER_VALUE
    flop = trial_flop(forward, trial.size, trial.epochs, val)
    return TrialWork(int(read), flop, trial_flop(executed, trial.size, trial.epochs, val))
