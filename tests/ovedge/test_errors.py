"""The shared error helpers: the one-line OpenVINO message and the errors that carry their data."""

from __future__ import annotations

from pathlib import Path

import pytest

from ovedge.errors import (
    CheckpointError,
    ConfigError,
    ConvertError,
    ConvertOptionError,
    DeviceUnavailableError,
    KeyFileError,
    ModelError,
    ModelFileError,
    OvedgeError,
    SignatureError,
    StateError,
    openvino_message,
)
from ovedge.layouts.shapes import LayoutMismatchError


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


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"what": "checkpoint a.pt", "problem": "does not exist"}, "checkpoint a.pt does not exist"),
        ({"what": "--arch 'x'", "detail": "no class 'Y'"}, "--arch 'x': no class 'Y'"),
        (
            {"what": "IR m.xml", "problem": "has 2 inputs", "detail": "why", "fix": "give one"},
            "IR m.xml has 2 inputs: why; give one",
        ),
    ],
    ids=["problem", "detail", "all"],
)
def test_described_errors_assemble_their_message_from_fields(fields: dict[str, str], message: str) -> None:
    """The long-tail errors take data as fields and assemble "{what} {problem}: {detail}; {fix}",
    leaving out empty parts; the fields stay readable on the exception."""
    err = CheckpointError(**fields)
    assert str(err) == message
    assert isinstance(err, ConvertError)
    assert (err.what, err.problem, err.detail, err.fix) == (
        fields["what"],
        fields.get("problem", ""),
        fields.get("detail", ""),
        fields.get("fix", ""),
    )


def test_described_errors_keep_their_roots_exit_code(tmp_path: Path) -> None:
    """A DescribedError error keeps the exit code and the class of the root it specialises (config: 2)."""
    key = KeyFileError(what=tmp_path / "k.key", problem="is encrypted", fix="use an unencrypted Ed25519 key")
    assert isinstance(key, ConfigError)
    assert key.exit_code == 2
    assert key.what == tmp_path / "k.key"
    for err in (ConvertOptionError(what="--x"), SignatureError(what="m"), ModelFileError(what="m")):
        assert err.exit_code == 1


def test_layout_mismatch_carries_the_layout_and_the_shapes() -> None:
    """LayoutMismatchError names what the layout needs and the shapes found, and keeps both as fields."""
    err = LayoutMismatchError(what="classification IR", want="one [1, C] output", shapes=[(1, -1, 4)], sep=", found")
    assert isinstance(err, ModelError)
    assert err.shapes == ((1, -1, 4),)
    assert err.want == "one [1, C] output"
    assert str(err) == "classification IR must have one [1, C] output, found [1, ?, 4]"
