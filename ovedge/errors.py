"""The project's exception hierarchy.

Every error a user can fix is an :class:`OvedgeError`. Its message names the thing that is
wrong and the fix; the command-line entry points print it as one line and exit non-zero.
Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class OvedgeError(Exception):
    """Root of every user-fixable error in ovedge."""

    exit_code: int = 1


class ConfigError(OvedgeError):
    """The configuration file is missing, malformed, or names something that does not exist."""

    exit_code = 2


class CameraError(OvedgeError):
    """A frame source cannot be opened or has failed for good."""


class ModelError(OvedgeError):
    """A model cannot be found, read, compiled, verified or run on the requested device."""


class ConvertError(OvedgeError):
    """A checkpoint cannot be converted: wrong format, wrong shapes, failed parity."""


class PublishError(OvedgeError):
    """Results cannot be delivered: the broker is unreachable or refuses us."""
