"""Hot model swap: a new version is verified, compiled beside the running one, self-tested on its
golden sample, then switched in between two frames; on any failure it is rejected and the running
model stays.

Triggers: a new version appearing in ``<store>/<name>/`` (polled when the config asks for
``latest``), SIGHUP (:func:`install_sighup`), or :meth:`ModelSwapper.request` (e.g. from the HTTP
API). All three only wake the ``model-swap`` thread; loading never happens in the caller.

Order of a swap (each step can reject, with the reason in logs, :meth:`ModelSwapper.status` and
the counters):

1. signature (when ``trusted_keys`` are configured) over the manifest's hashes, then the files
   against those hashes (when ``verify_hashes``);
2. ``prepare(version)``: the daemon's own loader (compile on the device, post-processor, rules
   checked against the new labels); the old model keeps serving meanwhile;
3. :func:`self_test`: the golden frame recorded by the converter is run on the new compiled model
   and every output compared with the recorded one within the manifest's ``atol``;
4. ``activate(prepared)``, then :meth:`daemon.engine.Engine.swap`; once the old model's last
   requests have called back, ``retire(old_model)``.

A rejected version is not retried by polling (a fix comes as a new version); an explicit request
retries it.

In :class:`daemon.app.Daemon`, ``prepare`` is ``load_model``; the deciders are kept per model
version (set in ``activate``, before the new model takes a frame) and looked up by
``item.model.version.version``, so results still coming from the old model are judged by the old
model's rules. The swapper sits in the ExitStack after the cameras, so it stops first.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Generic, Literal, Protocol, TypeVar

import cv2
import numpy as np

from daemon.engine import Engine, LoadedModel
from ovedge.errors import ModelError, OvedgeError
from ovedge.signing import verify_manifest
from ovedge.store import ModelStore, ModelVersion

__all__ = ["ModelSwapper", "SwapOutcome", "install_sighup", "self_test"]

log = logging.getLogger(__name__)


class HasModel(Protocol):
    """What ``prepare`` returns: anything that carries the compiled :class:`LoadedModel`."""

    @property
    def model(self) -> LoadedModel: ...


P = TypeVar("P", bound=HasModel)


def self_test(model: LoadedModel) -> float:
    """Run the manifest's golden frame on ``model``; return the largest output difference.

    Raises :class:`ModelError` when there is no golden sample, it cannot be read, an output
    differs by more than its ``atol``, or post-processing fails on the outputs.
    """
    version = model.version
    label = model.label
    golden = version.manifest.golden
    if golden is None:
        raise ModelError(f"{label} has no golden sample in its manifest; convert it again with ovedge-convert")
    frame = cv2.imread(str(version.path / golden.input), cv2.IMREAD_COLOR)
    if frame is None:
        raise ModelError(f"{label}: golden frame {version.path / golden.input} cannot be read")
    try:
        with np.load(version.path / golden.outputs) as npz:
            expected = [np.asarray(npz[str(i)]) for i in range(len(npz.files))]
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{label}: golden outputs {version.path / golden.outputs} cannot be read ({exc})") from exc
    request = model.compiled.create_infer_request()
    try:
        request.infer({0: frame[np.newaxis]})
    except RuntimeError as exc:
        raise ModelError(f"{label}: the golden frame does not run: {str(exc).strip().splitlines()[-1]}") from exc
    actual = [np.array(t.data, copy=True) for t in request.output_tensors]
    if len(actual) != len(expected):
        raise ModelError(
            f"{label}: self-test failed: {len(actual)} outputs, the golden sample recorded {len(expected)}"
        )
    worst = 0.0
    for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
        if got.shape != want.shape:
            raise ModelError(
                f"{label}: self-test failed: output {index} has shape {list(got.shape)}, "
                f"the golden sample recorded {list(want.shape)}"
            )
        diff = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max(initial=0.0))
        worst = max(worst, diff)
        if not diff <= golden.atol:  # also catches NaN
            raise ModelError(
                f"{label}: self-test failed: output {index} differs from the golden sample by {diff:.4g} "
                f"(allowed {golden.atol:.4g})"
            )
    try:
        model.postprocess(actual, frame.shape[:2])
    except (OvedgeError, ValueError, IndexError) as exc:
        raise ModelError(f"{label}: self-test failed: post-processing the golden outputs: {exc}") from exc
    return worst


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


class ModelSwapper(Generic[P]):
    """Owns the ``model-swap`` thread; a context manager (start on enter, stop and join on exit)."""

    def __init__(
        self,
        *,
        engine: Engine,
        store: ModelStore,
        prepare: Callable[[ModelVersion], P],
        activate: Callable[[P], None] | None = None,
        retire: Callable[[LoadedModel], None] | None = None,
        watch: bool = True,
        poll_interval: float = 2.0,
        verify_hashes: bool = True,
        trusted_keys: Sequence[Path] = (),
    ) -> None:
        self._engine = engine
        self._store = store
        self._prepare = prepare
        self._activate = activate
        self._retire = retire
        self._watch = watch
        self._poll_interval = poll_interval
        self._verify_hashes = verify_hashes
        self._trusted_keys = tuple(trusted_keys)
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

    def __enter__(self) -> ModelSwapper[P]:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()

    # -- triggers --------------------------------------------------------------------------------

    def request(self, version: int | Literal["latest"] = "latest", *, trigger: str = "request",
                done: Callable[[SwapOutcome | None], None] | None = None) -> None:
        """Ask for ``version`` (retried even if rejected before); returns at once.

        ``done`` is called from the ``model-swap`` thread with the outcome, or ``None`` when that
        version is already running (nothing to do).
        """
        with self._lock:
            self._pending.append((version, trigger, done))
        self._wake.set()

    def poll_now(self) -> None:
        """Look at the store now instead of at the next poll."""
        self._wake.set()

    # -- state -----------------------------------------------------------------------------------

    @property
    def active(self) -> LoadedModel:
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
            outcome = self._consider(wanted, trigger, explicit=True)
            if done is not None:
                done(outcome)
        if self._watch and not pending:
            self._consider("latest", "poll", explicit=False)

    def _consider(self, wanted: int | Literal["latest"], trigger: str, *, explicit: bool) -> SwapOutcome | None:
        name = self.active.name
        if wanted == "latest":
            versions = self._store.versions(name)
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
        """Verify, compile, self-test and switch to ``number`` now (in the caller's thread)."""
        old = self.active
        started = time.monotonic()
        try:
            version = self._store.resolve(old.name, number)
            if self._trusted_keys:
                verify_manifest(version.manifest, self._trusted_keys)
            if self._verify_hashes:
                version.verify_files()
            prepared = self._prepare(version)
            worst = self_test(prepared.model)
        except OvedgeError as exc:
            return self._record(old.name, number, trigger, started, reason=str(exc))
        except Exception as exc:  # an unexpected failure also rejects: the running model stays
            log.exception("model swap to %s v%d: unexpected error", old.name, number)
            return self._record(old.name, number, trigger, started, reason=f"{type(exc).__name__}: {exc}")
        if self._activate is not None:
            self._activate(prepared)
        retired = self._engine.swap(prepared.model)
        if self._retire is not None:
            self._retire(retired)
        log.info(
            "model swap: %s -> %s (%s, golden sample within %.3g, %.2f s)",
            retired.label,
            prepared.model.label,
            trigger,
            worst,
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
        return outcome


def install_sighup(swapper: ModelSwapper[Any]) -> Callable[[], None]:
    """SIGHUP asks ``swapper`` for the latest version; returns a function restoring the old handler.

    Call from the main thread (Python delivers signals there).
    """

    def on_hup(signum: int, _frame: FrameType | None) -> None:
        swapper.request("latest", trigger="SIGHUP")

    previous = signal.signal(signal.SIGHUP, on_hup)

    def restore() -> None:
        signal.signal(signal.SIGHUP, previous if previous is not None else signal.SIG_DFL)

    return restore
