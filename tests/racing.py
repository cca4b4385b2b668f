"""Threads made to interleave as densely as CPython allows, so that a race in the code under test
shows up in a test run instead of once in hours on a line.

CPython (3.11) switches threads only at certain points: a function's entry, a backward jump, after
a call into C. Two plain attribute reads in a row are never split; two calls of a property can be.
:func:`interleave` makes the readers give the GIL away at every Python function they enter (a
profile hook calling ``time.sleep(0)``), the very points where a switch may happen anyway, and
cuts the switch interval: an interleaving that the daemon meets once in 100 000 reads then happens
within a few.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

SWITCH_INTERVAL = 1e-6  # seconds


def _yield_on_call(_frame: FrameType, event: str, _arg: Any) -> None:
    if event == "call":
        time.sleep(0)  # releases the GIL: a waiting writer runs now


def interleave(writers: Sequence[Callable[[], None]], read: Callable[[], None], *, reads: int = 200,
               readers: int = 2) -> list[BaseException]:
    """``readers`` threads call ``read`` ``reads`` times each while every one of ``writers`` is
    called over and over in a thread of its own, until the readers are done.

    Returns every exception raised in any of the threads (a failed ``assert`` in ``read``
    included), oldest first: empty when the code under test held up. A thread stops at its first
    failure.
    """
    failures: list[BaseException] = []
    done = threading.Event()

    def writing(writer: Callable[[], None]) -> None:
        try:
            while not done.is_set():
                writer()
        except BaseException as exc:  # the test's subject: any failure of a writer
            failures.append(exc)

    def reading() -> None:
        sys.setprofile(_yield_on_call)
        try:
            for _ in range(reads):
                read()
        except BaseException as exc:  # the test's subject: any failure of a reader
            failures.append(exc)
        finally:
            sys.setprofile(None)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        write_threads = [threading.Thread(target=writing, args=(w,), name=f"writer-{i}")
                         for i, w in enumerate(writers)]
        read_threads = [threading.Thread(target=reading, name=f"reader-{i}") for i in range(readers)]
        for t in write_threads + read_threads:
            t.start()
        for t in read_threads:
            t.join()
        done.set()
        for t in write_threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    return failures
