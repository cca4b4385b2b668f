"""The shared error helpers: the one-line OpenVINO message and the errors that carry their data."""

from __future__ import annotations

from pathlib import Path

import pytest

from ovedge.errors import DeviceUnavailableError, ModelError, OvedgeError, StateError, openvino_message


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("Exception from src/a.cpp:77:\nException from src/b.cpp:54:\nthe reason\nmore detail\n", "the reason"),
        ("Check 'x == y' failed at src/c.cpp:9:\n  shapes differ  \n", "shapes differ"),
        ("one line only", "one line only"),
        ("Exception from src/a.cpp:77:\n", "Exception from src/a.cpp:77:"),
    ],
    ids=["wrapped", "check", "plain", "nothing-but-location"],
)
def test_openvino_message_takes_the_first_meaningful_line(text: str, line: str) -> None:
    """Source-location lines are skipped; the first line that says something is kept (the first line
    when there is nothing else)."""
    assert openvino_message(RuntimeError(text)) == line


def test_openvino_message_of_an_empty_error_is_its_type() -> None:
    """An exception without text is named by its type, never an empty string."""
    assert openvino_message(RuntimeError()) == "RuntimeError"


def test_device_unavailable_carries_its_data() -> None:
    """DeviceUnavailableError is a ModelError whose fields are what its message says."""
    err = DeviceUnavailableError("NPU", ["CPU"], absent=[("NPU", None)], fallbacks=["GPU"], advice="the driver")
    assert isinstance(err, ModelError)
    assert (err.device, err.available, err.absent, err.fallbacks) == ("NPU", ("CPU",), (("NPU", None),), ("GPU",))
    assert str(err) == (
        "device NPU is not available: OpenVINO found CPU; fallback GPU not available either; check the driver"
    )


def test_state_error_is_not_a_config_error(tmp_path: Path) -> None:
    """A state folder that fails at run time is a StateError (user-fixable, exit 1), not a ConfigError."""
    err = StateError(tmp_path / "seq", "corrupt ('x')", "delete it to restart numbering")
    assert isinstance(err, OvedgeError)
    assert err.exit_code == 1
    assert str(err) == f"{tmp_path / 'seq'}: corrupt ('x'); delete it to restart numbering"
