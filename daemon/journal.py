"""Log lines for journald: a ``<N>`` syslog priority prefix, so ``journalctl -p warning`` works.

systemd sets ``JOURNAL_STREAM=<device>:<inode>`` for a service whose stdout/stderr is connected
to the journal (systemd.exec(5)). The variable is inherited by children whose stderr goes
elsewhere, so it counts only when it names the stream we write to. Then each line starts with
the priority of the record's level (journald strips it and files the line under it) and carries
no timestamp (the journal adds its own).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TextIO

__all__ = ["PRIORITIES", "JournalFormatter", "setup_logging", "writes_to_journal"]

PRIORITIES = {
    logging.CRITICAL: 2,  # crit
    logging.ERROR: 3,  # err
    logging.WARNING: 4,  # warning
    logging.INFO: 6,  # info
    logging.DEBUG: 7,  # debug
}

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(levelname)s %(name)s: %(message)s"


def priority(levelno: int) -> int:
    """The syslog priority of a logging level (custom levels take the next standard one up)."""
    for level in sorted(PRIORITIES):
        if levelno <= level:
            return PRIORITIES[level]
    return PRIORITIES[logging.CRITICAL]


def writes_to_journal(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """True when ``$JOURNAL_STREAM`` names the file ``stream`` writes to."""
    env = os.environ if environ is None else environ
    device, _, inode = env.get("JOURNAL_STREAM", "").partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError):  # a stream without a file descriptor (e.g. pytest's capture)
        return False
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


class JournalFormatter(logging.Formatter):
    """``<N>`` + the plain line; every line of a multi-line record (a traceback) gets the prefix."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def setup_logging(level: str | int, stream: TextIO) -> None:
    """Configure the root logger once, for the CLI: journald's format when writing to the journal."""
    handler = logging.StreamHandler(stream)
    if writes_to_journal(stream):
        handler.setFormatter(JournalFormatter(JOURNAL_FORMAT))
    else:
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
