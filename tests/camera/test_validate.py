"""Frame checks (camera.validate) and pixel formats to BGR (camera.pixels), on real arrays and files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from camera import FrameCheck, ImageFolderSource, ImageFolderSourceConfig
from camera.pixels import pixels
from camera.validate import CONVERTED


def _picture(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("shape", "dtype", "reason"),
    [
        ((1, 1, 3), np.uint8, "smaller than the minimum 16x16"),
        ((37, 1000, 3), np.uint8, "aspect ratio of 27.0:1"),
        ((1000, 37, 3), np.uint8, "aspect ratio of 27.0:1"),
        ((64, 64, 3), np.float32, "pixel type float32 is not supported"),
        ((64, 64, 3), np.int16, "pixel type int16 is not supported"),
        ((64, 64, 2), np.uint8, "2 channels are not supported"),
        ((64, 64, 5), np.uint8, "5 channels are not supported"),
        ((64,), np.uint8, "is no image"),
    ],
)
def test_frames_that_cannot_be_judged_carry_the_reason(shape: tuple[int, ...], dtype: type, reason: str) -> None:
    """Too small, too elongated, float/signed pixels, 2 or 5 channels: an error frame with the reason and the size."""
    frame = FrameCheck().frame(np.zeros(shape, dtype), index=3, ref="x.png")
    assert frame.error is not None and reason in frame.error
    assert frame.index == 3 and frame.source_ref == "x.png"
    if len(shape) >= 2:
        assert frame.image.shape == (shape[0], shape[1], 3)  # the size that arrived, for the result


def test_limits_come_from_the_source_config() -> None:
    """min_width/min_height/max_aspect are per source: a 1000x37 line passes with max_aspect = 0, not with 20."""
    line = np.zeros((37, 1000, 3), np.uint8)
    lax = FrameCheck.of(ImageFolderSourceConfig(path=Path(), max_aspect=0))
    assert lax.frame(line, index=0, ref=None).error is None
    strict = FrameCheck.of(ImageFolderSourceConfig(path=Path(), max_aspect=20, min_height=40))
    error = strict.frame(line, index=0, ref=None).error
    assert error is not None and "smaller than the minimum 16x40" in error


def test_grey_bgra_and_16_bit_are_converted_and_say_so() -> None:
    """Grey -> BGR (equal channels), BGRA -> BGR (alpha dropped), 16-bit -> 8-bit by >> 8; each noted in extra."""
    check = FrameCheck()
    bgr = _picture(40, 50)
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    out = check.frame(grey, index=0, ref=None)
    assert out.error is None and out.extra[CONVERTED] == "grey -> BGR"
    assert out.image.shape == (40, 50, 3) and np.array_equal(out.image[:, :, 0], grey)
    assert np.array_equal(out.image[:, :, 2], grey)
    out = check.frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA), index=0, ref=None)
    assert out.extra[CONVERTED] == "BGRA -> BGR (alpha dropped)" and np.array_equal(out.image, bgr)
    wide = bgr.astype(np.uint16) * 257  # full-range 16-bit
    out = check.frame(wide, index=0, ref=None)
    assert out.extra[CONVERTED] == "16-bit -> 8-bit (>> 8)" and np.array_equal(out.image, bgr)
    assert out.image.dtype == np.uint8 and out.image.flags.c_contiguous
    assert CONVERTED not in check.frame(bgr, index=0, ref=None).extra  # BGR passes untouched


def test_sensor_depth_sets_the_16_bit_scaling() -> None:
    """A 12-bit sensor value in a uint16 is shifted by 4, not 8: 4095 -> 255, 2048 -> 128."""
    mono12 = np.full((32, 32), 2048, np.uint16)
    mono12[0, 0] = 4095
    out = FrameCheck().frame(mono12, index=0, ref=None, bits=12)
    assert out.extra[CONVERTED] == "12-bit -> 8-bit (>> 4), grey -> BGR"
    assert out.image[1, 1, 0] == 128 and out.image[0, 0, 0] == 255


def test_folder_files_of_every_kind(tmp_path: Path) -> None:
    """A folder with a 1x1, a 1000x37, a grey, a 16-bit and a colour PNG: two rejected with reasons, three judged."""
    bgr = _picture(48, 64)
    cv2.imwrite(str(tmp_path / "a_tiny.png"), np.zeros((1, 1, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "b_strip.png"), np.zeros((37, 1000, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "c_grey.png"), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(tmp_path / "d_deep.png"), bgr.astype(np.uint16) * 257)
    cv2.imwrite(str(tmp_path / "e_colour.png"), bgr)
    with ImageFolderSource(ImageFolderSourceConfig(path=tmp_path)) as src:
        frames = list(iter(src.read, None))
    by_ref = {f.source_ref: f for f in frames}
    assert list(by_ref) == ["a_tiny.png", "b_strip.png", "c_grey.png", "d_deep.png", "e_colour.png"]
    assert "smaller than the minimum" in (by_ref["a_tiny.png"].error or "")
    assert "aspect ratio" in (by_ref["b_strip.png"].error or "")
    assert by_ref["c_grey.png"].error is None and by_ref["c_grey.png"].extra[CONVERTED] == "grey -> BGR"
    assert by_ref["d_deep.png"].error is None and "16-bit -> 8-bit" in str(by_ref["d_deep.png"].extra[CONVERTED])
    assert np.array_equal(by_ref["d_deep.png"].image, bgr)
    assert by_ref["e_colour.png"].error is None and np.array_equal(by_ref["e_colour.png"].image, bgr)


def _mosaic(bgr: np.ndarray, pattern: str) -> np.ndarray:
    """A Bayer mosaic of ``bgr`` whose first 2x2 cell is ``pattern`` (e.g. "RGGB")."""
    index = {"B": 0, "G": 1, "R": 2}
    out = np.zeros(bgr.shape[:2], bgr.dtype)
    for k, colour in enumerate(pattern):
        dy, dx = divmod(k, 2)
        out[dy::2, dx::2] = bgr[dy::2, dx::2, index[colour]]
    return out


@pytest.mark.parametrize(("fmt", "pattern"), [("BayerRG8", "RGGB"), ("BayerGR8", "GRBG"),
                                              ("BayerGB8", "GBRG"), ("BayerBG8", "BGGR")])
def test_bayer_formats_demosaic_to_the_right_colours(fmt: str, pattern: str) -> None:
    """A flat red, green and blue part, mosaiced in each GenICam Bayer order, comes back as that colour in BGR."""
    for bgr_colour in ((0, 0, 200), (0, 200, 0), (200, 0, 0)):
        flat = np.full((16, 16, 3), bgr_colour, np.uint8)
        image, bits = pixels(_mosaic(flat, pattern).reshape(-1), fmt, 16, 16)
        assert bits is None
        assert tuple(int(v) for v in image[8, 8]) == bgr_colour, (fmt, bgr_colour)


def test_packed_colour_and_mono_formats() -> None:
    """RGB8 and RGBa8 (flat, as GenTL delivers) come out in BGR order; Mono12 keeps 12 bits for the check."""
    bgr = _picture(8, 16)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).reshape(-1)
    image, _ = pixels(rgb, "RGB8", 16, 8)
    assert np.array_equal(image, bgr)
    image, _ = pixels(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA).reshape(-1), "RGBa8", 16, 8)
    assert np.array_equal(FrameCheck(min_width=1, min_height=1).convert(image)[0], bgr)
    image, _ = pixels(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), "RGB8Packed", 16, 8)  # pylon's name, shaped array
    assert np.array_equal(image, bgr)
    mono = np.arange(128, dtype=np.uint16) * 32
    image, bits = pixels(mono, "Mono12", 16, 8)
    assert bits == 12 and image.shape == (8, 16) and image.dtype == np.uint16


def test_unsupported_or_short_buffers_are_refused() -> None:
    """A YUV format and a buffer of the wrong size raise ValueError naming the problem (the frame's error)."""
    with pytest.raises(ValueError, match="pixel format YUV422_8 is not supported"):
        pixels(np.zeros(64, np.uint8), "YUV422_8", 8, 4)
    with pytest.raises(ValueError, match="does not hold 8x4 px x 3 channels"):
        pixels(np.zeros(64, np.uint8), "BGR8", 8, 4)
