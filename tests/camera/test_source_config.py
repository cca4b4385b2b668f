"""The new source types' options in a real config file: valid ones load, mistakes are one line with the key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from camera import BaslerSourceConfig, GenICamSourceConfig, ImageFolderSourceConfig, StreamSourceConfig
from daemon.config import load_config
from ovedge.errors import ConfigError
from tests.configs import write_config


def _load(tmp_path: Path, source: dict[str, Any]) -> Any:
    return load_config(write_config(tmp_path, cameras=[{"id": "cam0", "source": source}])).cameras[0].source


def test_every_new_source_type_loads_from_toml(tmp_path: Path) -> None:
    """genicam, basler, a watched folder and an RTSP stream load with the documented keys; `cti` is made absolute."""
    genicam = _load(tmp_path, {
        "type": "genicam", "cti": "producer.cti", "user_id": "top", "pixel_format": "BayerRG8",
        "roi": [0, 0, 640, 480], "exposure": 5000.0, "gain": 1.5,
        "nodes": {"TriggerMode": "On", "TriggerSource": "Line1"},
    })
    assert isinstance(genicam, GenICamSourceConfig)
    assert genicam.cti == tmp_path / "producer.cti"
    assert list(genicam.nodes.items()) == [("TriggerMode", "On"), ("TriggerSource", "Line1")]  # order kept
    basler = _load(tmp_path, {"type": "basler", "serial": "40012345", "software_trigger": True, "timeout": 2.0})
    assert isinstance(basler, BaslerSourceConfig) and basler.software_trigger
    folder = _load(tmp_path, {"type": "folder", "path": "drop", "watch": True, "settle": 0.5, "after": "keep"})
    assert isinstance(folder, ImageFolderSourceConfig) and folder.path == tmp_path / "drop"
    stream = _load(tmp_path, {"type": "stream", "url": "rtsp://cam/x", "transport": "udp", "stall_timeout": 3})
    assert isinstance(stream, StreamSourceConfig) and stream.transport == "udp"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"type": "genicam", "cti": "p.cti", "exposur": 5}, "cameras[0].source.exposur"),
        ({"type": "genicam"}, "cameras[0].source.cti"),
        ({"type": "basler", "roi": [0, 0, 0, 480]}, "roi is [offset_x, offset_y, width, height]"),
        ({"type": "folder", "path": "d", "watch": True, "after": "delete"}, "cameras[0].source.after"),
        ({"type": "stream", "url": "http://cam/m.mjpg", "transport": "tcp"}, "transport applies to rtsp:// URLs only"),
        ({"type": "usb", "min_width": 0}, "cameras[0].source.min_width"),
    ],
)
def test_mistakes_are_one_line_with_the_key(tmp_path: Path, source: dict[str, Any], message: str) -> None:
    """Typos, missing required keys and impossible values are ConfigError lines naming the key."""
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, source)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
