"""OpenCV's and FFmpeg's own log lines: off for users, back on when ovedge logs at DEBUG.

OpenCV (``[ WARN:0@0.39] global cap.cpp:...``) and FFmpeg (``[tcp @ 0x...] Connection to ...
failed``) write to stderr themselves, bypassing our logging, before our one clear line about the
same problem; FFmpeg's lines can also echo a stream URL with its credentials. So unless the
``camera`` logger is enabled for DEBUG they are silenced:

* OpenCV's with ``cv2.utils.logging.setLogLevel`` (takes effect at once);
* FFmpeg's with ``OPENCV_FFMPEG_LOGLEVEL`` (an FFmpeg ``AV_LOG_*`` number), which OpenCV reads
  when its FFmpeg backend opens its first capture, so :func:`apply` runs before every open and
  the level in force at the first open stays for the process.

A value the user put in ``OPENCV_LOG_LEVEL`` / ``OPENCV_FFMPEG_LOGLEVEL`` themselves always wins.
"""

from __future__ import annotations

import logging
import os
from typing import Final

import cv2

__all__ = ["apply"]

FFMPEG_ENV: Final = "OPENCV_FFMPEG_LOGLEVEL"
OPENCV_ENV: Final = "OPENCV_LOG_LEVEL"
AV_LOG_QUIET: Final = -8

_user_set = frozenset(name for name in (FFMPEG_ENV, OPENCV_ENV) if name in os.environ)
_opencv_default = cv2.utils.logging.getLogLevel()
_logger = logging.getLogger("camera")


def apply() -> None:
    """Silence OpenCV's and FFmpeg's own logging, or restore their defaults when we log at DEBUG."""
    verbose = _logger.isEnabledFor(logging.DEBUG)
    if OPENCV_ENV not in _user_set:
        cv2.utils.logging.setLogLevel(_opencv_default if verbose else cv2.utils.logging.LOG_LEVEL_SILENT)
    if FFMPEG_ENV not in _user_set:
        if verbose:
            os.environ.pop(FFMPEG_ENV, None)
        else:
            os.environ[FFMPEG_ENV] = str(AV_LOG_QUIET)
