"""The new source types' options in a real config file: valid ones load, mistakes are one line with the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from camera import BaslerSourceConfig, GenICamSourceConfig, ImageFolderSourceConfig, StreamSourceConfig
from daemon.config import load_config
from ovedge.errors import ConfigError


def _config(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[[cameras]]\nid = "cam0"\n[cameras.source]\n{source}\n', encoding="utf-8")
    return path


def test_every_new_source_type_loads_from_toml(tmp_path: Path) -> None:
    """genicam, basler, a watched folder and an RTSP stream with its transport load with the documented keys."""
    cases = {
        'type = "genicam"\ncti = "producer.cti"\nuser_id = "top"\npixel_format = "BayerRG8"\n'
        'roi = [0, 0, 640, 480]\nexposure = 5000.0\ngain = 1.5\nnodes = { TriggerMode = "On", TriggerSource = "Line1" }':
            GenICamSourceConfig,
        'type = "basler"\nserial = "40012345"\nsoftware_trigger = true\ntimeout = 2.0': BaslerSourceConfig,
        'type = "folder"\npath = "drop"\nwatch = true\nsettle = 0.5\nafter = "keep"': ImageFolderSourceConfig,
        'type = "stream"\nurl = "rtsp://cam/x"\ntransport = "udp"\nstall_timeout = 3': StreamSourceConfig,
    }
    for text, kind in cases.items():
        source = load_config(_config(tmp_path, text)).cameras[0].source
        assert isinstance(source, kind), text
    genicam = load_config(_config(tmp_path, next(iter(cases)))).cameras[0].source
    assert isinstance(genicam, GenICamSourceConfig)
    assert list(genicam.nodes.items()) == [("TriggerMode", "On"), ("TriggerSource", "Line1")]  # order kept


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ('type = "genicam"\ncti = "p.cti"\nexposur = 5', "unknown key cameras[0].source.exposur"),
        ('type = "genicam"', "missing key cameras[0].source.cti"),
        ('type = "basler"\nroi = [0, 0, 0, 480]', "roi is [offset_x, offset_y, width, height]"),
        ('type = "folder"\npath = "d"\nwatch = true\nafter = "delete"', "cameras[0].source.after"),
        ('type = "stream"\nurl = "http://cam/m.mjpg"\ntransport = "tcp"', "transport applies to rtsp:// URLs only"),
        ('type = "usb"\nmin_width = 0', "cameras[0].source.min_width"),
    ],
)
def test_mistakes_are_one_line_with_the_key(tmp_path: Path, source: str, message: str) -> None:
    """Typos, missing required keys and impossible values are ConfigError lines naming the key."""
    with pytest.raises(ConfigError) as err:
        load_config(_config(tmp_path, source))
    assert message in str(err.value)
    assert "\n" not in str(err.value)
