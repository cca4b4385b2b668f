"""Rules -> verdict: ok labels, per-label thresholds, minimum area, regions of interest, ignore masks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from daemon.config import Rules
from daemon.decision import Decider
from daemon.result import Verdict
from ovedge.errors import ConfigError
from ovedge.irmeta import IRMeta, OutputLayout, Preprocessing, Task
from ovedge.layouts import Detection

META = IRMeta(
    task=Task.DETECTION, output_layout=OutputLayout.YOLOV8, labels=("ok", "scratch", "spot"),
    ok_labels=("ok",), preprocessing=Preprocessing(input_width=64, input_height=64),
)


def _d(label: str, score: float, box: tuple[int, int, int, int] | None = (10, 10, 20, 20),
       area: int | None = None) -> Detection:
    return Detection(label=label, score=score, box=box, area=area)


def test_ok_labels_from_the_ir_and_default_threshold() -> None:
    """Without rules, the IR's ok labels never count and defects count from min_score."""
    decider = Decider.build(Rules(), META, camera="c")
    assert decider.decide([_d("ok", 0.99)]) == (Verdict.OK, [])
    assert decider.decide([_d("scratch", 0.49)])[0] is Verdict.OK
    verdict, counted = decider.decide([_d("scratch", 0.5), _d("ok", 0.9)])
    assert verdict is Verdict.NG
    assert [c.label for c in counted] == ["scratch"]


def test_per_label_thresholds_and_ignored_labels() -> None:
    """A per-label threshold overrides min_score; an ignored label is never NG."""
    decider = Decider.build(Rules(thresholds={"scratch": 0.9}, ignore_labels=("spot",)), META, camera="c")
    assert decider.decide([_d("scratch", 0.8)])[0] is Verdict.OK
    assert decider.decide([_d("scratch", 0.95)])[0] is Verdict.NG
    assert decider.decide([_d("spot", 1.0)])[0] is Verdict.OK


def test_min_area_uses_region_area_then_box_area() -> None:
    """Small regions do not count; the region's own area wins over its box's."""
    decider = Decider.build(Rules(min_area=50), META, camera="c")
    assert decider.decide([_d("spot", 0.9, (0, 0, 5, 5))])[0] is Verdict.OK  # box area 25
    assert decider.decide([_d("spot", 0.9, (0, 0, 10, 10))])[0] is Verdict.NG  # box area 100
    assert decider.decide([_d("spot", 0.9, (0, 0, 10, 10), area=30)])[0] is Verdict.OK


def test_regions_of_interest_and_ignore_mask(tmp_path: Path) -> None:
    """Defects centred outside every ROI, or on the ignore mask, do not count; whole-frame ones always do."""
    mask = np.zeros((100, 100), np.uint8)
    mask[:, 50:] = 255
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    rules = Rules(rois=((0, 0, 40, 40), (60, 60, 100, 100)), ignore_mask=tmp_path / "mask.png")
    decider = Decider.build(rules, META, camera="c")
    assert decider.decide([_d("scratch", 0.9, (10, 10, 20, 20))])[0] is Verdict.NG  # in ROI 1, unmasked
    assert decider.decide([_d("scratch", 0.9, (40, 40, 50, 50))])[0] is Verdict.OK  # outside both ROIs
    assert decider.decide([_d("scratch", 0.9, (70, 70, 80, 80))])[0] is Verdict.OK  # in ROI 2, masked
    assert decider.decide([_d("scratch", 0.9, None)])[0] is Verdict.NG  # whole-frame classification


def test_rules_naming_unknown_labels_or_a_missing_mask_are_refused(tmp_path: Path) -> None:
    """A typo in a label or a missing mask file fails at load time with the camera and the names."""
    msg = r"camera 'c': rules.thresholds names labels the model does not have: \['scrach'\]"
    with pytest.raises(ConfigError, match=msg):
        Decider.build(Rules(thresholds={"scrach": 0.5}), META, camera="c")
    with pytest.raises(ConfigError, match=r"ignore_mask .* is not a readable image"):
        Decider.build(Rules(ignore_mask=tmp_path / "nope.png"), META, camera="c")


def test_near_threshold_is_a_score_within_the_margin_of_its_labels_threshold() -> None:
    """The model was unsure: a finding (counted or not, OK labels included) within ``margin`` of its
    label's threshold, on either side; ignored labels never make a frame uncertain."""
    decider = Decider.build(Rules(min_score=0.5, thresholds={"scratch": 0.8}, ignore_labels=("spot",)), META,
                            camera="c")
    assert decider.near_threshold([_d("scratch", 0.75)], 0.1)  # below its 0.8: OK, but barely
    assert decider.near_threshold([_d("scratch", 0.85)], 0.1)  # above: NG, but barely
    assert not decider.near_threshold([_d("scratch", 0.95)], 0.1)
    assert decider.near_threshold([_d("ok", 0.55, None)], 0.1)  # a classifier's OK, at 0.55 against 0.5
    assert not decider.near_threshold([_d("ok", 0.97, None)], 0.1)
    assert not decider.near_threshold([_d("spot", 0.5)], 0.1)  # ignored
    assert decider.near_threshold([_d("ok", 0.97, None), _d("crack", 0.45)], 0.1)  # any one is enough
    assert not decider.near_threshold([_d("scratch", 0.8)], 0.0)  # margin 0: off
