"""The `genicam` source through harvesters and the simulated GenTL producer the `genicam` package ships (viky.cti)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from camera import (
    CameraNotFoundError,
    CameraStalledError,
    GenICamSource,
    GenICamSourceConfig,
    MissingExtraError,
    NodeRefusedError,
    UnknownNodeError,
    open_source,
)
from camera.validate import CONVERTED
from ovedge.errors import CameraError
from ovedge.paths import path_context


@pytest.fixture(scope="module")
def viky() -> Path:
    """The simulated producer: three cameras (red, green, blue balls), 400x400 RGBa8 by default."""
    import genicam

    cti = Path(genicam.__file__).parent / "viky.cti"
    assert cti.is_file(), f"{cti} is missing: pip install 'ovedge[genicam]'"
    return cti


def test_grab_rgba8_frames_as_bgr(viky: Path) -> None:
    """The first device streams RGBa8; frames come out 400x400 BGR, alpha dropped and noted, indices counting."""
    source = open_source(GenICamSourceConfig(cti=viky))
    assert isinstance(source, GenICamSource)
    with source as cam:
        assert cam.feature("PixelFormat") == "RGBa8"
        frames = [cam.read() for _ in range(3)]
    got = [f for f in frames if f is not None]
    assert [f.index for f in got] == [0, 1, 2]
    for f in got:
        assert f.error is None and f.image.shape == (400, 400, 3) and f.image.dtype == np.uint8
        assert f.extra[CONVERTED] == "BGRA -> BGR (alpha dropped)"


def test_each_device_draws_its_own_colour_in_bgr_order(viky: Path) -> None:
    """The red, green and blue simulated cameras (by serial) have that channel brightest once made BGR."""
    for serial, channel in (("0", 2), ("1", 1), ("2", 0)):  # red -> BGR index 2, green 1, blue 0
        with GenICamSource(GenICamSourceConfig(cti=viky, serial=serial)) as cam:
            frame = cam.read()
        assert frame is not None
        sums = frame.image.reshape(-1, 3).astype(np.int64).sum(axis=0)
        assert int(np.argmax(sums)) == channel, (serial, sums)


def test_pixel_format_and_roi_settings_are_applied(viky: Path) -> None:
    """pixel_format = Mono8 and a 320x240 ROI: the camera reports them and frames are 240x320 grey made BGR."""
    cfg = GenICamSourceConfig(cti=viky, index=1, pixel_format="Mono8", roi=(0, 0, 320, 240))
    with GenICamSource(cfg) as cam:
        assert cam.feature("PixelFormat") == "Mono8"
        assert (cam.feature("Width"), cam.feature("Height")) == ("320", "240")
        frame = cam.read()
    assert frame is not None and frame.error is None
    assert frame.image.shape == (240, 320, 3) and frame.extra[CONVERTED] == "grey -> BGR"
    assert np.array_equal(frame.image[:, :, 0], frame.image[:, :, 2])


def test_arbitrary_node_is_set_and_read_back(viky: Path) -> None:
    """`nodes` sets any feature by name, in order: AcquisitionFrameRate reads back as written."""
    with GenICamSource(GenICamSourceConfig(cti=viky, nodes={"AcquisitionFrameRate": 12.0})) as cam:
        assert float(cam.feature("AcquisitionFrameRate")) == 12.0


def test_unknown_node_and_refused_value_are_named(viky: Path) -> None:
    """The simulated camera has no ExposureTime: refused naming it; a Width above its maximum is refused with it."""
    with pytest.raises(UnknownNodeError, match="has no feature 'ExposureTime'") as unknown:
        GenICamSource(GenICamSourceConfig(cti=viky, exposure=1000.0)).__enter__()
    assert unknown.value.node == "ExposureTime"
    with pytest.raises(NodeRefusedError, match="refused Width = 100000") as refused:
        GenICamSource(GenICamSourceConfig(cti=viky, nodes={"Width": 100000})).__enter__()
    assert refused.value.node == "Width"
    with pytest.raises(UnknownNodeError, match="has no feature 'TriggerMode'"):
        GenICamSource(GenICamSourceConfig(cti=viky, software_trigger=True)).__enter__()


def test_device_selection_errors(viky: Path, tmp_path: Path) -> None:
    """An unknown serial lists the serials found; a missing .cti names the path; two selectors are refused at load."""
    with pytest.raises(CameraNotFoundError, match=r"serial 99 .* is not found \(cameras found: 0, 1, 2\)") as err:
        GenICamSource(GenICamSourceConfig(cti=viky, serial="99")).__enter__()
    assert err.value.serials == ("0", "1", "2")
    with pytest.raises(CameraError, match=r"GenTL producer .*nothere\.cti does not exist; fix `cti`"):
        GenICamSource(GenICamSourceConfig(cti=tmp_path / "nothere.cti")).__enter__()
    with pytest.raises(ValidationError, match="one of serial, user_id, index"):
        GenICamSourceConfig(cti=viky, serial="1", index=0)


def test_relative_cti_is_taken_from_the_config_folder(viky: Path) -> None:
    """A relative `cti` is resolved against the config's folder at load, like every path in the config."""
    config = GenICamSourceConfig.model_validate({"cti": viky.name}, context=path_context(viky.parent))
    source = open_source(config)
    assert isinstance(source, GenICamSource) and source.cti == viky


def test_missing_harvesters_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch, viky: Path) -> None:
    """Without harvesters importable, opening says which extra to install."""
    monkeypatch.setitem(sys.modules, "harvesters.core", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'ovedge\[genicam\]'") as err:
        GenICamSource(GenICamSourceConfig(cti=viky)).__enter__()
    assert err.value.module == "harvesters"


def test_a_camera_slower_than_its_timeout_is_reported_stalled(viky: Path) -> None:
    """AcquisitionFrameRate 1/s and timeout 0.3 s: read() raises CameraStalledError naming `timeout` (not a hang)."""
    cfg = GenICamSourceConfig(cti=viky, nodes={"AcquisitionFrameRate": 1.0}, timeout=0.3)
    with GenICamSource(cfg) as cam, pytest.raises(CameraStalledError, match=r"no frame for 0\.3 s \(timeout\)") as err:
        _read(cam, 3)
    assert err.value.key == "timeout"


def _read(source: object, n: int) -> None:
    for _ in range(n):
        source.read()  # type: ignore[attr-defined]
