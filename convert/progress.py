"""Progress of the long steps, on stdout (stderr is kept for the one-line error).

One line when a step starts and one when it ends, so that nested steps and NNCF's own progress
bars interleave readably; in a terminal, loops also show a live counter.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")


class Progress:
    """Prints ``name ...`` and ``name: done in 1.2 s``; silent when ``enabled`` is False."""

    def __init__(self, *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stdout
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        self._line(f"{name} ...")
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            self._line(f"{name}: failed")
            raise
        elapsed = time.perf_counter() - start
        self.timings[name] = self.timings.get(name, 0.0) + elapsed
        self._line(f"{name}: done in {elapsed:.1f} s")

    def iterate(self, items: Iterable[T], name: str, total: int) -> Iterator[T]:
        live = self.enabled and self.stream.isatty()
        for index, item in enumerate(items, 1):
            yield item
            if live:
                self.stream.write(f"\r  {name} {index}/{total}")
                self.stream.flush()
        if live:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def _line(self, text: str) -> None:
        if self.enabled:
            self.stream.write(text + "\n")
            self.stream.flush()
