"""Progress of the long steps, on stdout (stderr is kept for the one-line error): a line per step."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")


class Progress:
    """Prints ``step ... done in 1.2 s`` lines; silent when ``enabled`` is False."""

    def __init__(self, *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stdout
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        self._write(f"{name} ...")
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            self._write(" failed\n")
            raise
        elapsed = time.perf_counter() - start
        self.timings[name] = self.timings.get(name, 0.0) + elapsed
        if self.enabled and self.stream.isatty():
            self._write(f"{name} done in {elapsed:.1f} s\n", carriage=True)
        else:
            self._write(f" done in {elapsed:.1f} s\n")

    def iterate(self, items: Iterable[T], name: str, total: int) -> Iterator[T]:
        for index, item in enumerate(items, 1):
            yield item
            if self.enabled and self.stream.isatty():
                self._write(f"{name} {index}/{total}", carriage=True)

    def _write(self, text: str, *, carriage: bool = False) -> None:
        if not self.enabled:
            return
        if carriage:
            self.stream.write("\r\x1b[K")
        self.stream.write(text)
        self.stream.flush()
