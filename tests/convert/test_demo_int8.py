"""INT8 on the committed, trained demo model: calibrated on camera frames, refused past --max-drop."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from camera.synthetic import DefectGenerator
from convert import demo_recipe as recipe
from convert.options import ConvertOptions
from convert.pipeline import convert


@pytest.mark.slow
def test_demo_int8_with_max_drop(tmp_path: Path) -> None:
    """DefectNet at INT8 (40 calibration frames) agrees with PyTorch and stays within 5 points on 120 frames."""
    calibration, validation = tmp_path / "cal", tmp_path / "val"
    calibration.mkdir()
    gen = DefectGenerator(77, 256, 256, 0.5)
    for i in range(40):
        cv2.imwrite(str(calibration / f"{i:03d}.png"), gen.render(i)[0])
    gen = DefectGenerator(78, 256, 256, 0.6)
    for i in range(120):
        frame, truth = gen.render(i)
        (validation / truth.label).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(validation / truth.label / f"{i:03d}.png"), frame)
    labels = tuple(recipe.LABELS_FILE.read_text().split())
    result = convert(
        ConvertOptions(
            checkpoint=recipe.CHECKPOINT,
            name=recipe.NAME,
            out=tmp_path / "store",
            arch=recipe.ARCH,
            labels=labels,
            ok_labels=recipe.OK_LABELS,
            input_width=recipe.INPUT_SIZE[1],
            input_height=recipe.INPUT_SIZE[0],
            mean=recipe.MEAN,
            std=recipe.STD,
            precision="int8",
            calibration=calibration,
            validation=validation,
            max_drop=0.05,
            parity_samples=40,
            progress=False,
        )
    )
    parity = result.manifest.parity
    assert parity["agreement"] >= 0.98 and parity["samples"] == 40
    assert parity["validation_images"] == 120.0
    assert parity["accuracy_fp32"] >= 0.85
    assert parity["accuracy_drop"] <= 0.05
