"""The preprocessing embedded in the IR: resize modes and colour order, against OpenCV/numpy."""

from __future__ import annotations

import cv2
import numpy as np
import openvino as ov
import pytest

from convert.preprocess import preprocessing_model
from ovedge.irmeta import Preprocessing, ResizeMode
from ovedge.layouts.geometry import NUMERIC, fit

F32 = {"INFERENCE_PRECISION_HINT": "f32"}


def run(pre: Preprocessing, frame: np.ndarray) -> np.ndarray:
    """The network input (HWC, pixel units before mean/std) the IR makes of ``frame``."""
    compiled = ov.Core().compile_model(preprocessing_model(pre), "CPU", F32)
    out = np.asarray(compiled(frame[None])[0])[0]
    return out.transpose(1, 2, 0) * np.array(pre.std, np.float32) + np.array(pre.mean, np.float32)


def gradient(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 // max(1, w - 1), yy * 255 // max(1, h - 1), (xx + yy) % 256], -1).astype(np.uint8)


def test_stretch_rgb_matches_opencv() -> None:
    """Stretch + BGR->RGB + mean/std gives what cv2.resize (linear) and a channel flip give."""
    pre = Preprocessing(input_width=32, input_height=24, mean=(10, 20, 30), std=(2, 3, 4), embedded=True)
    frame = gradient(48, 64)
    expected = cv2.resize(frame, (32, 24), interpolation=cv2.INTER_LINEAR)[..., ::-1].astype(np.float32)
    np.testing.assert_allclose(run(pre, frame), expected, atol=1.5)


def test_bgr_model_keeps_channel_order() -> None:
    """With color BGR (--bgr) the channels reach the network unswapped."""
    pre = Preprocessing(input_width=16, input_height=16, color="BGR", embedded=True)
    frame = np.zeros((16, 16, 3), np.uint8)
    frame[..., 0] = 200  # blue
    out = run(pre, frame)
    np.testing.assert_allclose(out[..., 0], 200, atol=1e-3)
    np.testing.assert_allclose(out[..., 2], 0, atol=1e-3)


@pytest.mark.parametrize(("h", "w"), [(96, 64), (40, 128), (100, 100)])
def test_letterbox_pads_with_grey_and_keeps_aspect(h: int, w: int) -> None:
    """Letterbox scales by the smaller ratio, centres the frame and pads with grey 114."""
    pre = Preprocessing(input_width=64, input_height=48, color="BGR", resize=ResizeMode.LETTERBOX, embedded=True)
    frame = gradient(h, w)
    out = run(pre, frame)
    ratio = min(48 / h, 64 / w)
    nh, nw = round(h * ratio), round(w * ratio)
    top, left = (48 - nh) // 2, (64 - nw) // 2
    expected = np.full((48, 64, 3), 114, np.float32)
    expected[top : top + nh, left : left + nw] = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR)
    assert np.abs(out - expected).mean() < 2.0
    if top:
        np.testing.assert_allclose(out[:top], 114, atol=1e-3)
    if left:
        np.testing.assert_allclose(out[:, :left], 114, atol=1e-3)


def test_centre_crop_fills_the_input() -> None:
    """Crop scales by the larger ratio and cuts the centre: no padding, the middle of the frame."""
    pre = Preprocessing(input_width=32, input_height=32, color="BGR", resize=ResizeMode.CROP, embedded=True)
    frame = gradient(32, 96)
    frame[:, :32] = 0  # left third black, right third black: a crop keeps only the middle
    frame[:, 64:] = 0
    out = run(pre, frame)
    np.testing.assert_allclose(out, frame[:, 32:64].astype(np.float32), atol=1.0)


@pytest.mark.parametrize(("h", "w"), [(301, 403), (77, 640), (480, 641), (33, 99), (500, 70)])
def test_graph_letterbox_is_the_daemons_fit(h: int, w: int) -> None:
    """The padding the IR builds is exactly what ovedge.layouts.geometry.fit tells the daemon (which
    maps boxes back with it): the same rows and columns of grey on each side."""
    pre = Preprocessing(input_width=64, input_height=48, color="BGR", resize=ResizeMode.LETTERBOX, embedded=True)
    out = run(pre, np.full((h, w, 3), 255, np.uint8))
    grey = np.all(np.abs(out - 114) < 1e-3, axis=2)
    rows, cols = np.flatnonzero(~grey.all(axis=1)), np.flatnonzero(~grey.all(axis=0))
    f = fit(w, h, pre, NUMERIC)
    assert (rows[0], 48 - 1 - rows[-1], cols[0], 64 - 1 - cols[-1]) == (f.top, f.bottom, f.left, f.right)
    assert (rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) == (f.new_h, f.new_w)
