"""The `basler` source against pylon's emulated cameras (pypylon with PYLON_CAMEMU): the real SDK, no hardware."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("PYLON_CAMEMU", "2")  # before pylon's transport layers are first enumerated

from camera import (
    BaslerSource,
    BaslerSourceConfig,
    CameraStalledError,
    DefectGenerator,
    MissingExtraError,
    NodeRefusedError,
    SoftwareTriggerable,
    UnknownNodeError,
    open_source,
)
from camera.validate import CONVERTED
from ovedge.errors import CameraError


def test_free_running_emulated_camera_delivers_checked_bgr_frames() -> None:
    """The first camera found streams Mono8 test images: BGR frames of the sensor size, grey noted, indices counting."""
    source = open_source(BaslerSourceConfig())
    assert isinstance(source, BaslerSource)
    with source as cam:
        frames = [cam.read() for _ in range(5)]
        width, height = int(cam.feature("Width")), int(cam.feature("Height"))
    got = [f for f in frames if f is not None]
    assert len(got) == 5 and [f.index for f in got] == list(range(5))
    for f in got:
        assert f.error is None and f.image.shape == (height, width, 3) and f.image.dtype == np.uint8
        assert f.extra[CONVERTED] == "grey -> BGR"


def test_frames_from_a_folder_of_pngs_come_back_exactly(tmp_path: Path) -> None:
    """ImageFilename + ImageFileMode through `nodes`, BGR8 and a ROI of the PNG size: each PNG, in name order."""
    gen = DefectGenerator(3, 160, 120, 0.5)
    pictures = [gen.render(i)[0] for i in range(3)]
    for i, picture in enumerate(pictures):
        cv2.imwrite(str(tmp_path / f"p{i}.png"), picture)
    cfg = BaslerSourceConfig(
        pixel_format="BGR8Packed",
        roi=(0, 0, 160, 120),
        nodes={"TestImageSelector": "Off", "ImageFileMode": "On", "ImageFilename": str(tmp_path)},
    )
    with BaslerSource(cfg) as cam:
        frames = [cam.read() for _ in range(4)]
    for k, frame in enumerate(frames):
        assert frame is not None and frame.error is None and CONVERTED not in frame.extra
        assert np.array_equal(frame.image, pictures[k % 3]), k


def test_exposure_and_gain_are_applied_and_read_back() -> None:
    """exposure and gain from the config are what the camera reports after opening."""
    with BaslerSource(BaslerSourceConfig(exposure=2500.0, gain=3.0)) as cam:
        assert float(cam.feature("ExposureTime")) == 2500.0
        assert float(cam.feature("Gain")) == 3.0
    with BaslerSource(BaslerSourceConfig(exposure=4000.0)) as cam:
        assert float(cam.feature("ExposureTime")) == 4000.0


def test_software_trigger_gives_one_frame_per_trigger() -> None:
    """With software_trigger, nothing arrives untriggered; each trigger() yields exactly one frame."""
    source = BaslerSource(BaslerSourceConfig(software_trigger=True, roi=(0, 0, 320, 240)))
    assert isinstance(source, SoftwareTriggerable)
    with source as cam:
        assert cam.feature("TriggerMode") == "On" and cam.feature("TriggerSource") == "Software"
        timer = threading.Timer(0.5, cam.interrupt)
        timer.start()
        assert cam.read() is None  # no trigger, no frame: read waited until interrupted
        frames = []
        for _ in range(20):
            cam.trigger()
            frames.append(cam.read())
        timer = threading.Timer(0.5, cam.interrupt)
        timer.start()
        assert cam.read() is None  # 20 triggers, 20 frames, none extra
    assert all(f is not None and f.error is None and f.image.shape == (240, 320, 3) for f in frames)
    assert [f.index for f in frames if f is not None] == list(range(20))


def test_trigger_on_a_free_running_camera_is_refused() -> None:
    """trigger() without software_trigger is a CameraError saying which key to set."""
    with BaslerSource(BaslerSourceConfig()) as cam, pytest.raises(CameraError, match="software_trigger = true"):
        cam.trigger()


def test_unknown_feature_and_refused_value_name_the_feature() -> None:
    """A feature the camera lacks and a value out of its range fail on open, each naming the feature."""
    with pytest.raises(UnknownNodeError, match="has no feature 'ExposureTimeMagic'") as unknown:
        BaslerSource(BaslerSourceConfig(nodes={"ExposureTimeMagic": 5})).__enter__()
    assert unknown.value.node == "ExposureTimeMagic"
    with pytest.raises(NodeRefusedError, match=r"refused ExposureTime = 1000000000000\.0: ") as refused:
        BaslerSource(BaslerSourceConfig(exposure=1e12)).__enter__()
    assert refused.value.node == "ExposureTime"
    with pytest.raises(NodeRefusedError, match="refused PixelFormat = 'YUV999'"):
        BaslerSource(BaslerSourceConfig(pixel_format="YUV999")).__enter__()


def test_camera_chosen_by_serial_or_reported_missing() -> None:
    """serial picks that camera; an unknown serial names the serials found."""
    with BaslerSource(BaslerSourceConfig(serial="0815-0001")) as cam:
        assert cam.serial == "0815-0001"
    with pytest.raises(CameraError, match=r"Basler camera 12345 is not found \(cameras found: 0815-0000"):
        BaslerSource(BaslerSourceConfig(serial="12345")).__enter__()


def test_missing_pypylon_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without pypylon importable, opening says which extra to install (no ImportError traceback)."""
    monkeypatch.setitem(sys.modules, "pypylon", None)  # the import machinery's "not installed"
    with pytest.raises(MissingExtraError, match=r"pip install 'ovedge\[basler\]'") as err:
        BaslerSource(BaslerSourceConfig()).__enter__()
    assert err.value.extra == "basler" and "\n" not in str(err.value)


def test_silent_free_running_camera_stalls_but_a_hardware_triggered_one_waits() -> None:
    """At 1 frame/s with timeout 0.3 s the camera is reported stalled; with TriggerMode=On (a PLC line) it waits."""
    slow = BaslerSourceConfig(nodes={"AcquisitionFrameRateEnable": True, "AcquisitionFrameRate": 1.0}, timeout=0.3)
    with BaslerSource(slow) as cam, pytest.raises(CameraStalledError, match=r"no frame for 0\.3 s \(timeout\)"):
        _read(cam, 3)
    line = BaslerSourceConfig(nodes={"TriggerMode": "On", "TriggerSource": "Line1"}, timeout=0.2)
    assert line.stall_after is None
    with BaslerSource(line) as cam:
        timer = threading.Timer(1.0, cam.interrupt)
        timer.start()
        assert cam.read() is None  # waited past `timeout` for the line without calling it a stall


def _read(source: object, n: int) -> None:
    for _ in range(n):
        source.read()  # type: ignore[attr-defined]
