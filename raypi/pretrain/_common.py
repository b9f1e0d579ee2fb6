"""What every demo pre-training recipe shares: its inputs, seeded streams, progress, output."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from raypi.pretrain.recipes import Recipe

RECIPE_FILE = "pretrain.json"
"""Written beside the weights: the recipe, its data, the losses per epoch, the weights hash."""


@dataclass
class Outcome:
    """What a recipe's training loop returns to be saved."""

    files: dict[str, bytes]
    """File name → bytes, written into the encoder's weights folder."""
    losses: list[float]
    """Mean training loss per epoch."""
    state: dict[str, torch.Tensor]
    """The encoder's tensors, hashed into ``weights_sha256``."""


def weights_sha256(state: dict[str, torch.Tensor]) -> str:
    """Return a hash of tensors by name, dtype, shape and values (not of pickled bytes)."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        if tensor.dtype == torch.bfloat16:  # NumPy has no bfloat16: hash its 16-bit patterns
            tensor = tensor.view(torch.int16)
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def data_identity(dataset_root: str) -> dict:
    """Return what identifies the demo data a recipe learns from (its ``meta.json``)."""
    from raypi.data import tables

    meta = tables.read_meta(dataset_root)
    return {key: meta.get(key) for key in ("name", "n", "seed", "design")}


def write_outcome(
    folder: Path, recipe: Recipe, outcome: Outcome, seed: int, data: dict, seconds, **extra
):
    """Write the files and ``pretrain.json`` into ``folder`` atomically (a sibling, renamed).

    Args:
        folder: The encoder's weights folder (replaced whole).
        recipe: The recipe that made the weights.
        outcome: Files, losses and tensors to hash.
        seed: The recipe's seed.
        data: The dataset's identity (``data_identity``).
        seconds: Wall time of the training.
        extra: More fields of the record (e.g. the hash of the text encoder CLIP aligned to).

    Returns:
        The recipe record written.
    """
    partial = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name, payload in outcome.files.items():
        (partial / name).write_bytes(payload)
    record = {
        "recipe": asdict(recipe),
        "seed": seed,
        "data": data,
        "losses": [round(float(loss), 6) for loss in outcome.losses],
        "seconds": round(seconds, 1),
        "weights_sha256": weights_sha256(outcome.state),
        "torch": torch.__version__,
        **extra,
    }
    (partial / RECIPE_FILE).write_text(json.dumps(record, indent=2) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return record


def read_record(folder: Path) -> dict | None:
    """Return a weights folder's ``pretrain.json``, or None where there is none."""
    path = folder / RECIPE_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Yield shuffled index batches of one epoch (the last may be shorter; none of size 1)."""
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        chunk = order[start : start + batch_size]
        if len(chunk) > 1:
            yield chunk


@contextmanager
def seeded(seed: int):
    """Run a block with torch's global generator seeded (dropout, init), restoring it after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class Progress:
    """Epoch progress on stderr: a tqdm bar on a terminal, else a line every ~10 % of epochs."""

    def __init__(self, total: int, description: str):
        self.total, self.description, self.done, self.postfix = total, description, 0, ""
        self.started = time.perf_counter()
        self.bar = None
        if sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=description, unit="epoch", file=sys.stderr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()

    def set_postfix(self, **values) -> None:
        """Show ``values`` (e.g. the epoch's loss) beside the count."""
        self.postfix = ", ".join(f"{key} {value}" for key, value in values.items())
        if self.bar is not None:
            self.bar.set_postfix(**values)

    def update(self) -> None:
        """Count one finished epoch."""
        self.done += 1
        if self.bar is not None:
            self.bar.update()
            return
        step = -(-self.total // 10)
        if self.done % step == 0 or self.done == self.total:
            seconds = time.perf_counter() - self.started
            print(
                f"raypi pretrain: {self.description}: epoch {self.done}/{self.total}, "
                f"{self.postfix}, {seconds:.0f} s",
                file=sys.stderr,
                flush=True,
            )


def train(modules, loss_of, n: int, recipe: Recipe, generator, label: str):
    """Train ``modules`` with AdamW on a one-cycle schedule over ``recipe.epochs``.

    Args:
        modules: What is trained (their parameters; train mode during, eval mode after).
        loss_of: Index batch → loss.
        n: Training rows.
        recipe: Epochs, batch size, learning rate, weight decay.
        generator: Stream of the batch order (``loss_of`` may draw from it too).
        label: Progress label beside the encoder's name.

    Returns:
        ``(optimizer, mean loss per epoch)``.
    """
    params = [p for module in modules for p in module.parameters()]
    optimizer = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps = recipe.epochs * -(-n // recipe.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=recipe.lr, total_steps=steps + 1, pct_start=0.1
    )
    for module in modules:
        module.train()
    losses = []
    with Progress(recipe.epochs, f"{recipe.encoder} ({label})") as bar:
        for _ in range(recipe.epochs):
            total, count = 0.0, 0
            for index in batches(n, recipe.batch_size, generator):
                loss = loss_of(index)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                total, count = total + loss.item() * len(index), count + len(index)
            losses.append(total / count)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            bar.update()
    for module in modules:
        module.eval()
    return optimizer, losses


def load_images(dataset_root: str, preprocess, description: str) -> torch.Tensor:
    """Decode and preprocess every image of the dataset table, in table order.

    Args:
        dataset_root: Dataset folder (local or ``s3://``).
        preprocess: ``EncoderSpec.preprocess``.
        description: Progress label.

    Returns:
        Float tensor [N, C, H, W].
    """
    from raypi.data import tables

    frame = tables.read_dataset(dataset_root)
    started, pixels = time.perf_counter(), []
    for path in frame["image_path"]:
        pixels.append(preprocess(tables.read_image(dataset_root, path)))
    print(
        f"raypi pretrain: {description}: {len(pixels)} images read in "
        f"{time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    return torch.stack(pixels)


def load_reports(dataset_root: str) -> list[str]:
    """Return every report of the dataset table, in table order (empty strings for none)."""
    from raypi.data import tables

    frame = tables.read_dataset(dataset_root)
    return [text if isinstance(text, str) else "" for text in frame["report"]]
