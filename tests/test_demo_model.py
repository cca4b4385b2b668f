"""The committed demo model (models/demo/) against DefectNet and fresh synthetic frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from camera import LABELS, DefectGenerator
from convert.demo_model import INPUT_SIZE, MEAN, STD, classify, load_checkpoint

DEMO = Path(__file__).resolve().parent.parent / "models" / "demo"
SEED = 3  # neither the training seed (1) nor the held-out seed (2) of tools/train_demo_model.py


def test_checkpoint_is_small_and_its_labels_are_the_generators() -> None:
    """defectnet.pt is a small fp32 state_dict; labels.txt lists LABELS in logit order."""
    size = (DEMO / "defectnet.pt").stat().st_size
    assert size < 1_000_000
    assert tuple((DEMO / "labels.txt").read_text(encoding="utf-8").split()) == LABELS


def test_training_record_matches_the_model_module() -> None:
    """training.json records the preprocessing the model module uses, and a held-out accuracy >= 0.97."""
    info = json.loads((DEMO / "training.json").read_text(encoding="utf-8"))
    assert tuple(info["mean"]) == MEAN
    assert tuple(info["std"]) == STD
    assert tuple(info["input_size"]) == INPUT_SIZE
    assert info["colour_order"] == "RGB"
    assert info["labels"] == list(LABELS)
    assert info["train_seed"] != info["holdout_seed"]
    assert info["holdout_accuracy"] >= 0.97
    assert sum(map(sum, info["holdout_confusion"])) == info["holdout_frames"]


def test_checkpoint_loads_strictly_and_classifies_unseen_frames() -> None:
    """The checkpoint loads into DefectNet with strict=True and gets >= 90% of 200 unseen 256x256 frames right."""
    model = load_checkpoint(DEMO / "defectnet.pt", num_classes=len(LABELS))
    gen = DefectGenerator(seed=SEED, width=256, height=256, defect_rate=0.75)
    rendered = [gen.render(i) for i in range(200)]
    images = np.stack([image for image, _ in rendered])
    truth = np.array([LABELS.index(t.label) for _, t in rendered])
    pred = classify(model, images)
    accuracy = float((pred == truth).mean())
    assert accuracy >= 0.9, f"accuracy {accuracy:.3f} on seed {SEED}"
    assert set(pred.tolist()) == set(range(len(LABELS)))  # every class is predicted somewhere
