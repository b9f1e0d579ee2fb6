"""raypi's torch AUC/AUPRC against scikit-learn's, on validation-sized inputs (CPU).

raypi computes both metrics every epoch of every fit; ``raypi.train.metrics`` keeps a torch
implementation (tested equal to scikit-learn) because it runs where the probabilities are (no
host copy on a GPU) and, as this measures, is faster on the CPU at the study's sizes.

    python benchmarks/metrics.py
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.preprocessing import label_binarize

from raypi.train import metrics

SHAPES = ((3524, 2), (3524, 5), (600, 5), (1000, 2))  # Age val rows, 5x1200 val, demo val


def _sklearn(labels, probs) -> tuple[float, float]:
    y, p = labels.numpy(), probs.numpy()
    if p.shape[1] == 2:
        return roc_auc_score(y, p[:, 1]), average_precision_score(y, p[:, 1])
    onehot = label_binarize(y, classes=list(range(p.shape[1])))
    return roc_auc_score(onehot, p, average="micro"), average_precision_score(
        onehot, p, average="micro"
    )


def _raypi(labels, probs) -> tuple[float, float]:
    return metrics.auc(labels, probs), metrics.auprc(labels, probs)


def _ms(function, labels, probs, repeats: int) -> float:
    function(labels, probs)
    start = time.perf_counter()
    for _ in range(repeats):
        function(labels, probs)
    return (time.perf_counter() - start) / repeats * 1e3


def main(argv: list[str] | None = None) -> None:
    """Print one JSON row per shape: milliseconds of both, their ratio, and equality."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--smoke-test", action="store_true", help="2 repeats")
    args = parser.parse_args(argv)
    repeats = 2 if args.smoke_test else args.repeats
    generator = torch.Generator().manual_seed(0)
    print(json.dumps({"cores": os.cpu_count(), "torch_threads": torch.get_num_threads()}))
    for rows, classes in SHAPES:
        labels = torch.randint(0, classes, (rows,), generator=generator)
        probs = torch.softmax(torch.randn(rows, classes, generator=generator), 1)
        ours, theirs = _ms(_raypi, labels, probs, repeats), _ms(_sklearn, labels, probs, repeats)
        same = max(abs(a - b) for a, b in zip(_raypi(labels, probs), _sklearn(labels, probs)))
        print(json.dumps({"rows": rows, "classes": classes, "raypi_ms": round(ours, 2),
                          "sklearn_ms": round(theirs, 2), "speedup": round(theirs / ours, 2),
                          "max_abs_difference": same}))  # fmt: skip


if __name__ == "__main__":
    main()
