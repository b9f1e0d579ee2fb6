"""The demo's causal graph, recovered by raypi's own encoders, heads and splits.

Features come from the tiny encoders run in-process (the Ray pipeline that writes the same
tokens is tested in test_features_extract.py); heads are trained with ``raypi.train.fit``.
"""

from __future__ import annotations

import pytest
import torch

from raypi.data import tables
from raypi.data.demo import build_demo
from raypi.encoders import get_encoder
from raypi.splits import split_task, training_subset
from raypi.tasks import get_task
from raypi.train import FitConfig, FitData, fit

N_IMAGES = 600
SIZE = 200
EPOCHS = 20


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Demo dataset with tiny_vit image tokens and tiny_bert report tokens per image_id."""
    root = tmp_path_factory.mktemp("demo")
    build_demo(root, n=N_IMAGES, seed=0)
    dataset = tables.read_dataset(root)
    image_spec, text_spec = get_encoder("tiny_vit"), get_encoder("tiny_bert")
    image_model, text_model = image_spec.build(), text_spec.build()
    pixels = torch.stack(
        [image_spec.preprocess(tables.read_image(root, p)) for p in dataset.image_path]
    )
    with torch.no_grad():
        image_tokens = image_model(pixels)
        reports = [r if isinstance(r, str) else "" for r in dataset.report]
        text_tokens, lengths = text_spec.encode(reports, 128, text_model)
    index = {image_id: i for i, image_id in enumerate(dataset.image_id)}
    return root, dataset, index, image_tokens, text_tokens, lengths


def _fit(demo, task: str, method: str, seed: int = 0) -> float:
    root, dataset, index, image_tokens, text_tokens, lengths = demo
    spec = get_task(task)
    split = split_task(tables.read_task(root, spec, dataset), spec, seed)
    train_rows = [index[i] for i in training_subset(split, SIZE, seed)]
    val_rows = [index[i] for i in split.val_ids]
    labels = dict(zip(split.train_ids + split.val_ids, split.train_labels + split.val_labels))
    uses_image, uses_text = method != "text", method in ("teacher", "text")

    def rows(tokens, selected):
        return tokens[selected] if tokens is not None else None

    data = FitData(
        train_tokens=rows(image_tokens if uses_image else None, train_rows),
        train_labels=torch.tensor([labels[dataset.image_id[i]] for i in train_rows]),
        val_tokens=rows(image_tokens if uses_image else None, val_rows),
        val_labels=torch.tensor([labels[dataset.image_id[i]] for i in val_rows]),
        train_text=rows(text_tokens if uses_text else None, train_rows),
        train_text_lengths=rows(lengths if uses_text else None, train_rows),
        val_text=rows(text_tokens if uses_text else None, val_rows),
        val_text_lengths=rows(lengths if uses_text else None, val_rows),
    )
    config = FitConfig(
        head="attention",
        method=method,
        num_classes=spec.num_classes,
        lr=1e-3,
        epochs=EPOCHS,
        seed=seed,
        has_cls_token=True,
        context=f"{task}/{method}/seed {seed}",
    )
    return fit(data, config).best_val_auc


def test_report_reading_teacher_beats_image_only_on_diagnostic_task(demo):
    image = _fit(demo, "demo_diagnostic", "image")
    teacher = _fit(demo, "demo_diagnostic", "teacher")
    print(f"diagnostic: teacher {teacher:.3f}, image-only {image:.3f}")
    assert teacher > image + 0.01, (teacher, image)


def test_auxiliary_label_is_in_the_image_not_in_the_report(demo):
    image = _fit(demo, "demo_auxiliary", "image")
    text = _fit(demo, "demo_auxiliary", "text")
    print(f"auxiliary: image-only {image:.3f}, text-only {text:.3f}")
    assert image > 0.7, image
    assert text < 0.65, text
    assert image > text + 0.1
