"""Hot model swap: a new version is verified, compiled beside the running one, self-tested on its
golden sample, then switched in between two frames; on any failure it is rejected and the running
model stays.

Triggers: a new version appearing in ``<store>/<name>/`` (polled when the config asks for
``latest``), SIGHUP (:func:`install_sighup`), or :meth:`ModelSwapper.request` (e.g. from the HTTP
API). All three only wake the ``model-swap`` thread; loading never happens in the caller.

A swap is :meth:`daemon.preflight.ModelLoader.load` (resolve, verify the signature then the
hashes, compile beside the running model, build the camera rules for the new labels, golden
self-test: the same steps as the first model at start-up), then :meth:`daemon.engine.Engine.swap`
with the new :class:`~daemon.engine.ActiveModel`. Each step can reject, with the reason in logs,
:meth:`ModelSwapper.status` and the counters; the running model keeps serving meanwhile and after.
Results still coming from the old model carry the old ActiveModel, so they are judged by its rules.

A rejected version is not retried by polling (a fix comes as a new version); an explicit request
retries it. In :class:`daemon.app.Daemon` the swapper sits in the ExitStack after the cameras, so
it stops first.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any, Literal

from daemon.engine import ActiveModel, Engine
from daemon.preflight import ModelLoader
from ovedge.errors import OvedgeError

__all__ = ["ModelSwapper", "SwapOutcome", "install_sighup"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SwapOutcome:
    """One attempt: the version, whether it took over, and why not."""

    name: str
    version: int
    accepted: bool
    reason: str | None
    trigger: str  # "poll", "request", "SIGHUP"
    at: float  # time.time()
    seconds: float  # how long verify + compile + self-test took

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "accepted": self.accepted,
            "reason": self.reason,
            "trigger": self.trigger,
            "at": self.at,
            "seconds": round(self.seconds, 3),
        }


class ModelSwapper:
    """Owns the ``model-swap`` thread; a context manager (start on enter, stop and join on exit)."""

    def __init__(
        self,
        *,
        engine: Engine,
        loader: ModelLoader,
        watch: bool = True,
        poll_interval: float = 2.0,
        on_change: Callable[[SwapOutcome], None] | None = None,
    ) -> None:
        self._engine = engine
        self._loader = loader
        self._on_change = on_change  # told after every outcome (the daemon republishes its status)
        self._watch = watch
        self._poll_interval = poll_interval
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pending: list[tuple[int | Literal["latest"], str, Callable[[SwapOutcome | None], None] | None]] = []
        self._rejected: dict[int, str] = {}
        self._thread = threading.Thread(target=self._run, name="model-swap", daemon=True)
        self.history: list[SwapOutcome] = []
        self.swaps = 0
        self.rejections = 0

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> ModelSwapper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()

    # -- triggers --------------------------------------------------------------------------------

    def request(
        self,
        version: int | Literal["latest"] = "latest",
        *,
        trigger: str = "request",
        done: Callable[[SwapOutcome | None], None] | None = None,
    ) -> None:
        """Ask for ``version`` (retried even if rejected before); returns at once.

        ``done`` is called on the ``model-swap`` thread once the request was handled, with the
        outcome (swapped or rejected), or ``None`` when that version is already running (nothing
        to do) or the attempt failed unexpectedly.
        """
        with self._lock:
            self._pending.append((version, trigger, done))
        self._wake.set()

    def poll_now(self) -> None:
        """Look at the store now instead of at the next poll."""
        self._wake.set()

    # -- state -----------------------------------------------------------------------------------

    @property
    def active(self) -> ActiveModel:
        return self._engine.model

    def status(self) -> dict[str, Any]:
        with self._lock:
            last = self.history[-1].as_dict() if self.history else None
            rejected = {str(v): r for v, r in sorted(self._rejected.items())}
            return {"swaps": self.swaps, "rejections": self.rejections, "last": last, "rejected": rejected}

    # -- the thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._poll_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._step()
            except Exception:  # a bug must not kill the thread: the daemon keeps its model
                log.exception("model swap: unexpected error")

    def _step(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for wanted, trigger, done in pending:
            outcome: SwapOutcome | None = None
            try:
                outcome = self._consider(wanted, trigger, explicit=True)
            finally:
                if done is not None:
                    done(outcome)
        if self._watch and not pending:
            self._consider("latest", "poll", explicit=False)

    def _consider(self, wanted: int | Literal["latest"], trigger: str, *, explicit: bool) -> SwapOutcome | None:
        name = self.active.name
        if wanted == "latest":
            versions = self._loader.store.versions(name)
            if not versions:
                return None
            number = versions[-1]
        else:
            number = int(wanted)
        if number == self.active.version.version:
            return None
        if not explicit and number in self._rejected:
            return None
        return self.swap_to(number, trigger=trigger)

    def swap_to(self, number: int, *, trigger: str = "request") -> SwapOutcome:
        """Resolve, verify, compile, self-test and switch to ``number`` now (in the caller's thread)."""
        old = self.active
        started = time.monotonic()
        try:
            new = self._loader.load(number)
        except OvedgeError as exc:
            return self._record(old.name, number, trigger, started, reason=str(exc))
        except Exception as exc:  # an unexpected failure also rejects: the running model stays
            log.exception("model swap to %s v%d: unexpected error", old.name, number)
            return self._record(old.name, number, trigger, started, reason=f"{type(exc).__name__}: {exc}")
        retired = self._engine.swap(new)
        log.info(
            "model swap: %s -> %s (%s, golden sample within %.3g, %.2f s)",
            retired.label,
            new.label,
            trigger,
            new.golden_diff,
            time.monotonic() - started,
        )
        return self._record(old.name, number, trigger, started, reason=None)

    def _record(self, name: str, number: int, trigger: str, started: float, *, reason: str | None) -> SwapOutcome:
        outcome = SwapOutcome(name, number, reason is None, reason, trigger, time.time(), time.monotonic() - started)
        with self._lock:
            self.history.append(outcome)
            if reason is None:
                self.swaps += 1
                self._rejected.pop(number, None)
            else:
                self.rejections += 1
                self._rejected[number] = reason
        if reason is not None:
            log.error(
                "model swap to %s v%d rejected (%s): %s; %s keeps running",
                name,
                number,
                trigger,
                reason,
                self.active.label,
            )
        if self._on_change is not None:
            self._on_change(outcome)
        return outcome


def install_sighup(
    swapper: ModelSwapper,
    *,
    started: Callable[[], None] | None = None,
    finished: Callable[[], None] | None = None,
) -> Callable[[], None]:
    """SIGHUP asks ``swapper`` for the latest version; returns a function restoring the old handler.

    ``started`` runs in the signal handler, ``finished`` on the ``model-swap`` thread once the
    request was handled (the daemon sends systemd ``RELOADING=1`` and ``READY=1`` from them).
    Call from the main thread (Python delivers signals there).
    """

    def done(_outcome: SwapOutcome | None) -> None:
        if finished is not None:
            finished()

    def on_hup(signum: int, _frame: FrameType | None) -> None:
        if started is not None:
            started()
        swapper.request("latest", trigger="SIGHUP", done=done)

    previous = signal.signal(signal.SIGHUP, on_hup)

    def restore() -> None:
        signal.signal(signal.SIGHUP, previous if previous is not None else signal.SIG_DFL)

    return restore
