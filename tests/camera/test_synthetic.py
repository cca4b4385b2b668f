"""The synthetic defect generator and the source built on it."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from camera import LABELS, DefectGenerator, FrameSource, SyntheticSource, SyntheticSourceConfig
from camera.synthetic import FrameTruth


def test_same_seed_and_index_give_same_frame_in_any_order() -> None:
    """A frame depends on (seed, index) only, not on which frames were rendered before it."""
    a = DefectGenerator(seed=5, width=96, height=64, defect_rate=0.5)
    b = DefectGenerator(seed=5, width=96, height=64, defect_rate=0.5)
    forward = [a.render(i) for i in range(6)]
    backward = {i: b.render(i) for i in reversed(range(6))}
    for i, (image, truth) in enumerate(forward):
        assert np.array_equal(image, backward[i][0])
        assert truth == backward[i][1]
    assert np.array_equal(a.render(3)[0], forward[3][0])  # rendering again changes nothing


def test_different_seeds_give_different_frames() -> None:
    """Another seed is another stream of parts."""
    a = DefectGenerator(seed=1, width=64, height=64, defect_rate=0.5).render(0)[0]
    b = DefectGenerator(seed=2, width=64, height=64, defect_rate=0.5).render(0)[0]
    assert not np.array_equal(a, b)


def test_image_is_bgr_uint8_of_the_requested_size() -> None:
    """Frames are H x W x 3 uint8, as every source yields them."""
    image, _ = DefectGenerator(seed=0, width=160, height=120, defect_rate=0.5).render(0)
    assert image.shape == (120, 160, 3)
    assert image.dtype == np.uint8


def test_defect_rate_and_kinds_over_a_few_hundred_frames() -> None:
    """About defect_rate of frames are defective, all three kinds occur, truth is consistent."""
    gen = DefectGenerator(seed=11, width=64, height=64, defect_rate=0.3)
    truths = [gen.render(i)[1] for i in range(400)]
    share = sum(t.defective for t in truths) / len(truths)
    assert 0.22 <= share <= 0.38  # 400 draws at p=0.3: sd ~0.023
    kinds = {t.label for t in truths}
    assert kinds == set(LABELS)
    for t in truths:
        if t.defective:
            assert 1 <= len(t.defects) <= 3
            assert {d.label for d in t.defects} == {t.label}
        else:
            assert t.defects == ()


@pytest.mark.parametrize(("width", "height"), [(256, 256), (320, 200), (48, 40)])
def test_truth_boxes_lie_inside_the_frame(width: int, height: int) -> None:
    """Every defect box is non-empty and within the image bounds, at any frame size."""
    gen = DefectGenerator(seed=3, width=width, height=height, defect_rate=1.0)
    for i in range(40):
        _, truth = gen.render(i)
        for d in truth.defects:
            x0, y0, x1, y1 = d.box
            assert 0 <= x0 < x1 <= width
            assert 0 <= y0 < y1 <= height


def test_defects_change_pixels_only_inside_their_boxes() -> None:
    """The same part rendered clean and defective differs (by more than noise) only inside the boxes."""
    defective = DefectGenerator(seed=21, width=256, height=256, defect_rate=1.0)
    clean = DefectGenerator(seed=21, width=256, height=256, defect_rate=0.0)
    for i in range(30):
        image, truth = defective.render(i)
        plain, plain_truth = clean.render(i)
        assert plain_truth.label == "ok"
        changed = np.abs(image.astype(np.int16) - plain.astype(np.int16)).max(axis=2) > 12
        inside = np.zeros(changed.shape, dtype=bool)
        for d in truth.defects:
            x0, y0, x1, y1 = d.box
            inside[y0:y1, x0:x1] = True
        assert changed.sum() >= 10 * len(truth.defects)  # visible: dozens of pixels per defect
        assert not (changed & ~inside).any()


def test_defects_stay_visible_at_the_demo_models_input_size() -> None:
    """Resized from 256x256 to 128x128, every defective frame still differs from its clean twin in its boxes."""
    defective = DefectGenerator(seed=7, width=256, height=256, defect_rate=1.0)
    clean = DefectGenerator(seed=7, width=256, height=256, defect_rate=0.0)
    for i in range(60):
        image, truth = defective.render(i)
        plain, _ = clean.render(i)
        a = cv2.resize(image, (128, 128), interpolation=cv2.INTER_LINEAR).astype(np.int16)
        b = cv2.resize(plain, (128, 128), interpolation=cv2.INTER_LINEAR).astype(np.int16)
        changed = np.abs(a - b).max(axis=2) > 15
        seen = [
            int(changed[y0 // 2 : y1 // 2 + 1, x0 // 2 : x1 // 2 + 1].sum())
            for x0, y0, x1, y1 in (d.box for d in truth.defects)
        ]
        assert max(seen) >= 10, f"frame {i} ({truth.label}): {seen}"


def test_zero_and_full_defect_rate() -> None:
    """defect_rate 0 never injects a defect, 1 always does."""
    none = DefectGenerator(seed=0, width=32, height=32, defect_rate=0.0)
    every = DefectGenerator(seed=0, width=32, height=32, defect_rate=1.0)
    assert all(none.render(i)[1] == FrameTruth("ok") for i in range(30))
    assert all(every.render(i)[1].defective for i in range(30))


def test_bad_arguments_are_refused() -> None:
    """Tiny frames, rates outside [0, 1] and negative indices are programming errors."""
    with pytest.raises(ValueError, match="16x16"):
        DefectGenerator(seed=0, width=8, height=64, defect_rate=0.5)
    with pytest.raises(ValueError, match="defect_rate"):
        DefectGenerator(seed=0, width=64, height=64, defect_rate=1.5)
    with pytest.raises(ValueError, match="index"):
        DefectGenerator(seed=0, width=64, height=64, defect_rate=0.5).render(-1)


def test_synthetic_source_yields_count_frames_then_none() -> None:
    """The source numbers its frames, attaches truth and source_ref, and ends after `count`."""
    cfg = SyntheticSourceConfig(seed=9, width=64, height=48, fps=0, count=5, defect_rate=0.5)
    source: FrameSource = SyntheticSource(cfg)
    gen = DefectGenerator(seed=9, width=64, height=48, defect_rate=0.5)
    with source as src:
        frames = [src.read() for _ in range(5)]
        assert src.read() is None
        assert src.read() is None
    assert [f.index for f in frames if f] == [0, 1, 2, 3, 4]
    for f in frames:
        assert f is not None
        image, truth = gen.render(f.index)
        assert np.array_equal(f.image, image)
        assert f.extra["truth"] == truth
        assert f.source_ref == f"synthetic:9:{f.index}"
        assert f.image.shape == (48, 64, 3)
    assert "seed=9" in source.description


def test_synthetic_source_restarts_on_reenter() -> None:
    """Entering the source again starts from frame 0."""
    cfg = SyntheticSourceConfig(seed=1, width=32, height=32, fps=0, count=2)
    source = SyntheticSource(cfg)
    with source:
        first = source.read()
        source.read()
    with source:
        again = source.read()
    assert first is not None
    assert again is not None
    assert again.index == 0
    assert np.array_equal(first.image, again.image)


def test_synthetic_source_paces_to_fps() -> None:
    """With fps set, n frames take at least (n - 1) periods (a lower bound: sleep never returns early)."""
    cfg = SyntheticSourceConfig(seed=1, width=32, height=32, fps=50, count=5)
    with SyntheticSource(cfg) as source:
        start = time.monotonic()
        frames = list(iter(source.read, None))
        elapsed = time.monotonic() - start
    assert len(frames) == 5
    assert elapsed >= 4 / 50
