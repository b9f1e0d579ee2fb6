"""INSPECT's balancing: whole patients (the study's, default) or single images."""

import pandas as pd
import pytest

from raypi.data.inspect_ct import InspectOptions, balanced_task


def _studies() -> pd.DataFrame:
    rows = []
    # 6 positive images of 3 patients (one of them also has a negative image).
    for patient, outcomes in {"p0": "++", "p1": "++-", "p2": "++"}.items():
        rows += [(patient, o) for o in outcomes]
    # 20 negative-only patients with 1 to 3 images each, and one censored image.
    for index in range(20):
        rows += [(f"n{index}", "-")] * (1 + index % 3)
    rows.append(("c0", "c"))
    names = {"+": "positive", "-": "negative", "c": "censored"}
    return pd.DataFrame(
        {
            "image_id": [f"img{i:03d}" for i in range(len(rows))],
            "patient_id": [patient for patient, _ in rows],
            "pe": [names[o] for _, o in rows],
        }
    )


def test_patients_are_kept_whole_and_the_classes_balanced():
    studies = _studies()
    table, drops = balanced_task(studies, "pe", seed=0)
    per_patient = studies[studies["pe"] != "censored"].groupby("patient_id").size()
    kept = table.groupby("patient_id").size()
    assert (kept == per_patient[kept.index]).all()  # no patient split
    assert {"p0", "p1", "p2"} <= set(kept.index)
    positives, negatives = (table["label"] == 1).sum(), (table["label"] == 0).sum()
    assert positives == 6 and 6 <= negatives <= 6 + 2  # the last patient may bring up to 2 more
    # The fewest patients: without the last one added, the negatives fall short.
    assert "c0" not in set(table["patient_id"])
    assert table.equals(balanced_task(studies, "pe", seed=0)[0])
    assert not table.equals(balanced_task(studies, "pe", seed=1)[0])


def test_images_balance_exactly_and_split_patients():
    table, _ = balanced_task(_studies(), "pe", seed=0, balance="images")
    assert (table["label"] == 1).sum() == (table["label"] == 0).sum() == 6


def test_unknown_balance_is_refused():
    with pytest.raises(ValueError, match="patients"):
        InspectOptions(balance="studies")
    with pytest.raises(ValueError, match="images"):
        balanced_task(_studies(), "pe", seed=0, balance="rows")
