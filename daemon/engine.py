"""The inference engine: one compiled IR, N requests in flight, callbacks that only hand off.

:class:`LoadedModel` is everything decided at load time for one model version: the compiled
model on its device, the IR metadata, the post-processor, the number of requests.
:class:`ActiveModel` is what serves frames: a loaded model with every camera's rules built for it;
the swapper replaces it as one piece, and every in-flight frame carries the one it was submitted
to, so a result is always judged by the rules of the model that produced it.
:class:`Engine` feeds raw frames (preprocessing is inside the IR) into the active model and hands
each finished request to the decision thread through a bounded queue. Credits make the bound
exact: a frame is submitted only with a free credit, a credit comes back only when the decision
thread has taken the result, so the finished-request deque never holds more than the credits
(``num_requests`` + ``extra_capacity``). The decision thread takes every finished request at
once (:meth:`Engine.take_batch`): one lock round trip and one wake-up per batch, not per frame.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import openvino as ov

from camera.frame import Frame
from daemon.config import ModelConfig, PerformanceHint
from daemon.decision import Decider
from daemon.devices import DeviceChoice, choose_device, compile_properties, execution_devices
from ovedge.errors import ModelCompileError, ModelError, ModelFileError, openvino_message
from ovedge.irmeta import IRMeta, read_rt_info
from ovedge.layouts import PostProcessor, build_postprocessor, output_shapes
from ovedge.store import ModelVersion

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """One model version compiled on its device, with everything chosen at load time."""

    version: ModelVersion
    meta: IRMeta
    compiled: Any  # openvino.CompiledModel
    postprocess: PostProcessor
    device: DeviceChoice
    execution_devices: tuple[str, ...]
    num_requests: int
    annotate: PostProcessor  # the same decoder, regions with their outlines (CVAT); not the camera path
    core: Any = None  # openvino.Core that compiled it (for static_copy)
    properties: Mapping[str, Any] = field(default_factory=dict)  # its compile properties

    @property
    def name(self) -> str:
        return self.version.name

    @property
    def label(self) -> str:
        return f"{self.version.name} v{self.version.version}"

    @classmethod
    def load(cls, core: ov.Core, version: ModelVersion, cfg: ModelConfig, *, cache_dir: Path | None) -> LoadedModel:
        source = str(version.xml)
        try:
            model = core.read_model(version.xml)
        except RuntimeError as exc:
            raise ModelFileError(
                what=source, problem="cannot be read by OpenVINO", detail=openvino_message(exc)
            ) from exc
        meta = read_rt_info(model, source=source)
        choice = choose_device(core, cfg.device, cfg.fallback)
        props = compile_properties(
            hint=cfg.hint,
            num_requests=cfg.num_requests or None,
            streams=cfg.streams,
            threads=cfg.threads,
            inference_precision=cfg.inference_precision,
            cache_dir=cache_dir,
        )
        try:
            # From the path, not the read model, so that the blob cache can skip compilation.
            compiled = core.compile_model(str(version.xml) if cache_dir else model, choice.device, props)
        except RuntimeError as exc:
            raise ModelCompileError(
                model=f"{version.name} v{version.version}", device=choice.device, reason=openvino_message(exc)
            ) from exc
        shapes = output_shapes(compiled)  # dynamic dimensions as -1
        post = build_postprocessor(meta, shapes)
        annotate = build_postprocessor(meta, shapes, outlines=True)
        try:
            optimal = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        except RuntimeError:
            optimal = 1
        return cls(
            version=version,
            meta=meta,
            compiled=compiled,
            postprocess=post,
            device=choice,
            execution_devices=execution_devices(compiled),
            num_requests=cfg.num_requests or default_requests(max(1, optimal), cfg.hint),
            annotate=annotate,
            core=core,
            properties=props,
        )

    def static_copy(self, shape: tuple[int, ...]) -> Any:
        """The same IR compiled for frames of exactly ``shape`` (H x W x C), on the same device with
        the same properties: the in-graph resize then runs with its sizes known at compile time
        (``benchmark_app -shape`` vs ``-data_shape`` measures what that is worth, benchmarks/README.md).
        Raises :class:`StaticShapeError` when the IR cannot take that shape or does not compile for it."""
        try:
            model = self.core.read_model(self.version.xml)
            model.reshape(ov.PartialShape([1, *shape]))  # the frame is input 0, the only one
            return self.core.compile_model(model, self.device.device, dict(self.properties))
        except RuntimeError as exc:
            raise StaticShapeError(self.label, shape, openvino_message(exc)) from exc


class StaticShapeError(ModelError):
    """A static-shape copy of a model cannot be made for a frame size (the dynamic model serves it)."""

    def __init__(self, label: str, shape: tuple[int, ...], problem: str) -> None:
        self.label = label
        self.shape = shape
        self.problem = problem
        super().__init__(f"{label}: no static-shape copy for {shape_text(shape)} frames: {problem}")


def shape_text(shape: tuple[int, ...]) -> str:
    """``(480, 640, 3)`` -> ``"640x480x3"`` (width first, as cameras are named)."""
    return "x".join(str(d) for d in (shape[1], shape[0], *shape[2:])) if len(shape) >= 2 else str(shape)


def infer_once(compiled: Any, image: npt.NDArray[Any]) -> list[npt.NDArray[Any]]:
    """One synchronous inference of ``image`` (H x W x C) on a new request of ``compiled``; copies of
    its outputs. Outside the engine's pool every inference goes through here: ``share_inputs`` because
    a copying ``infer()`` writes into the request's input tensor, which OpenVINO's CPU plugin may share
    with a camera frame another request of the same model was given in place (seen on 2026.4)."""
    request = compiled.create_infer_request()
    request.infer({0: np.ascontiguousarray(image[np.newaxis])}, share_inputs=True)
    return [np.array(request.get_output_tensor(i).data, copy=True) for i in range(len(compiled.outputs))]


def largest_difference(got: npt.NDArray[Any], want: npt.NDArray[Any]) -> float:
    """Largest absolute difference of two outputs of the same shape, in float64 (NaN stays NaN)."""
    return float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max(initial=0.0))


def static_difference(loaded: LoadedModel, compiled: Any, image: npt.NDArray[Any]) -> float:
    """Largest output difference between ``loaded``'s dynamic model and its static ``compiled`` copy
    on ``image``; raises :class:`StaticShapeError` beyond the golden sample's tolerance."""
    golden = loaded.version.manifest.golden
    atol = golden.atol if golden is not None else 1e-4
    worst = 0.0
    for want, got in zip(infer_once(loaded.compiled, image), infer_once(compiled, image), strict=True):
        if want.shape != got.shape:
            raise StaticShapeError(loaded.label, image.shape, f"output shape {list(got.shape)} instead of "
                                                              f"{list(want.shape)}")
        worst = max(worst, largest_difference(got, want))
    if not worst <= atol:  # also catches NaN
        raise StaticShapeError(loaded.label, image.shape, f"outputs differ from the dynamic model's by {worst:.3g} "
                                                          f"(allowed {atol:.3g})")
    return worst


@dataclass(frozen=True, slots=True)
class ActiveModel:
    """A model version ready to serve: compiled, self-tested, with every camera's rules for its labels."""

    loaded: LoadedModel
    deciders: Mapping[str, Decider]  # by camera id
    golden_diff: float  # largest output difference of the golden self-test
    adhoc: Decider | None = None  # the [rules] decider for HTTP ad-hoc images (when [http] is enabled)

    @property
    def version(self) -> ModelVersion:
        return self.loaded.version

    @property
    def name(self) -> str:
        return self.loaded.version.name

    @property
    def label(self) -> str:
        return self.loaded.label


MAX_STATIC_SHAPES = 4  # static-shape copies per model; frames of further shapes use the dynamic model


class Submitted(NamedTuple):
    """What travels with a request: the frame and who asked, opaque to the engine."""

    frame: Frame
    context: Any


class InferenceDone(NamedTuple):
    """A finished request, handed from OpenVINO's thread to the decision thread.

    Named tuples (here and :class:`Submitted`): built once per frame, they cost a tenth of a
    frozen dataclass.
    """

    frame: Frame
    context: Any
    model: ActiveModel  # the model it ran on, with the rules to judge it by
    outputs: Sequence[npt.NDArray[Any]] | None  # None when inference failed
    latency_ms: float
    error: str | None = None


class Engine:
    """Feeds frames to the active model; results come out of :meth:`take` in completion order."""

    def __init__(self, model: ActiveModel, *, extra_capacity: int = 2, static_shapes: bool = False,
                 on_static: Callable[[], None] | None = None) -> None:
        self._model = model
        self._on_static = on_static  # called (thread static-shape) once a copy serves: the status changed
        capacity = model.loaded.num_requests + extra_capacity
        self._extra_capacity = extra_capacity
        self._capacity = capacity
        self._credits = threading.Semaphore(capacity)
        # Finished requests, oldest first; never longer than ``capacity`` (credits guard it).
        self._done: deque[InferenceDone] = deque()
        self._done_ready = threading.Condition(threading.Lock())
        self._queue = self._make_queue(model, model.loaded.compiled)
        self._retiring: list[RequestPool] = []  # replaced by swap(), requests still running
        self._submit_lock = threading.Lock()
        # Static-shape copies of the active model, by frame shape (see _specialise); guarded by _submit_lock.
        self._static_shapes = static_shapes
        self._static: dict[tuple[int, ...], RequestPool] = {}
        self._static_compiled: dict[tuple[int, ...], Any] = {}
        self._asked: set[tuple[int, ...]] = set()

    @property
    def model(self) -> ActiveModel:
        return self._model

    @property
    def static_shapes(self) -> tuple[tuple[int, ...], ...]:
        """The frame shapes (H, W, C) that run on a static-shape copy of the active model."""
        with self._submit_lock:
            return tuple(self._static)

    def _make_queue(self, model: ActiveModel, compiled: Any) -> RequestPool:
        n_outputs = len(compiled.outputs)

        def on_done(request: ov.InferRequest, userdata: Submitted) -> None:
            # OpenVINO's thread: copy the outputs out of the request (it is reused) and hand off.
            # get_output_tensor(i) by index: the ``output_tensors`` property costs ~15 us a call.
            try:
                outputs = [request.get_output_tensor(i).data.copy() for i in range(n_outputs)]
                item = InferenceDone(userdata.frame, userdata.context, model, outputs, float(request.latency))
            except Exception as exc:  # noqa: BLE001 - a callback must never raise
                item = InferenceDone(userdata.frame, userdata.context, model, None, 0.0, f"reading outputs: {exc}")
            self._hand_off(item)

        return RequestPool(compiled, model.loaded.num_requests, on_done)

    def submit(self, frame: Frame, context: Any, *, timeout: float | None = None) -> bool:
        """Start inference on ``frame``; blocks while every credit is taken.

        Returns False only when ``timeout`` passed without a free credit (nothing was started).
        A frame that cannot be started (wrong shape, device error), or that its source marked with
        ``error``, comes out of :meth:`take` as a failed :class:`InferenceDone`, never silently.
        """
        if not self._credits.acquire(timeout=timeout):
            return False
        if frame.error is not None:  # the source could not deliver a usable picture: ERROR, never inferred
            self._hand_off(InferenceDone(frame, context, self._model, None, 0.0, frame.error))
            return True
        image = frame.image
        with self._submit_lock:
            model = self._model
            pool = self._static.get(image.shape)
            if pool is None:
                pool = self._queue
                if self._static_shapes and image.shape not in self._asked and len(self._asked) < MAX_STATIC_SHAPES:
                    self._asked.add(image.shape)
                    threading.Thread(target=self._specialise, args=(model, image), name="static-shape",
                                     daemon=True).start()
            try:
                pool.start_async(image, Submitted(frame, context))
            except Exception as exc:  # noqa: BLE001 - becomes an ERROR result
                self._hand_off(InferenceDone(frame, context, model, None, 0.0, openvino_message(exc)))
        return True

    def _specialise(self, model: ActiveModel, image: npt.NDArray[Any]) -> None:
        """Thread ``static-shape``, once per new frame shape (at most :data:`MAX_STATIC_SHAPES` per
        model): compile a static copy of the model for that shape, check it against the dynamic
        model on this very frame, then route frames of that shape to it. Until then, and for good
        when the copy fails or differs, the dynamic model serves them: no frame waits for this."""
        shape = image.shape
        try:
            compiled = model.loaded.static_copy(shape)
            diff = static_difference(model.loaded, compiled, image)
        except StaticShapeError as exc:
            log.warning("%s; they keep running on the dynamic model", exc)
            return
        except Exception:
            log.exception("%s: static-shape copy for %s frames failed (bug); they keep running on the dynamic "
                          "model", model.label, shape_text(shape))
            return
        pool = self._make_queue(model, compiled)
        with self._submit_lock:
            if self._model is not model:
                return  # swapped meanwhile: the new model makes its own copies
            self._static[shape] = pool
            self._static_compiled[shape] = compiled
        log.info("%s: %s frames now run on a static-shape copy (outputs within %.3g of the dynamic model)",
                 model.label, shape_text(shape), diff)
        if self._on_static is not None:
            try:
                self._on_static()
            except Exception:
                log.exception("bug while announcing the static-shape copy (it serves anyway)")

    def _hand_off(self, item: InferenceDone) -> None:
        # Any thread; never blocks for long, never raises, never finds the deque full (credits).
        with self._done_ready:
            self._done.append(item)
            if len(self._done) == 1:  # the taker waits only on an empty deque
                self._done_ready.notify()

    def take(self, timeout: float | None = None) -> InferenceDone | None:
        """The next finished request, or None after ``timeout``; frees its credit."""
        batch = self.take_batch(timeout, limit=1)
        return batch[0] if batch else None

    def take_batch(self, timeout: float | None = None, *, limit: int = 0) -> list[InferenceDone]:
        """Every finished request waiting (at most ``limit`` when > 0), oldest first, or ``[]``
        after ``timeout``; frees their credits in one go. One lock round trip per batch."""
        with self._done_ready:
            if not self._done and not self._done_ready.wait_for(lambda: self._done, timeout):
                return []
            if 0 < limit < len(self._done):
                batch = [self._done.popleft() for _ in range(limit)]
            else:
                batch = list(self._done)
                self._done.clear()
        self._credits.release(len(batch))
        return batch

    def drain(self) -> None:
        """Wait until every started request has called back."""
        with self._submit_lock:
            for pool in [*self._retiring, self._queue, *self._static.values()]:
                pool.wait_all()

    def swap(self, model: ActiveModel) -> ActiveModel:
        """Make ``model`` the active one between two frames; return the old one once it is idle.

        Frames submitted before the switch finish on the old model and their results carry it;
        every later frame goes to the new one: no frame is lost or inferred twice. ``model`` must
        already be compiled and self-tested (see :mod:`daemon.preflight`).
        """
        pool = self._make_queue(model, model.loaded.compiled)  # outside the lock: submitting is not held up
        with self._submit_lock:
            # The same compiled model with other rules (a reload): its static copies serve on.
            carried = dict(self._static_compiled) if model.loaded is self._model.loaded else {}
        static = {shape: self._make_queue(model, compiled) for shape, compiled in carried.items()}
        with self._submit_lock:
            old_model, old_pools = self._model, [self._queue, *self._static.values()]
            self._model, self._queue, self._static = model, pool, static
            self._static_compiled, self._asked = carried, set(carried)
            self._retiring.extend(old_pools)
            grow = model.loaded.num_requests + self._extra_capacity - self._capacity
            if grow > 0:  # the new model wants more requests in flight: more credits, equal room
                self._capacity += grow
                self._credits.release(grow)
        for old_pool in old_pools:
            old_pool.wait_all()  # their callbacks still hand results off through the same queue
        with self._submit_lock:
            for old_pool in old_pools:
                self._retiring.remove(old_pool)
        return old_model


def default_requests(optimal: int, hint: PerformanceHint) -> int:
    """Requests in flight when the config leaves it to us.

    The device's optimal number keeps its streams busy only if a new request starts the moment
    one ends; ours pass through Python (callback, decide thread, credit, submit) first. One extra
    request queued per stream hides that gap: ``optimal + 1`` for the latency hint (a frame
    waits for the previous one only when the camera outpaces the model), ``2 * optimal`` for
    the throughput hints (benchmarks/README.md has the measurements).
    """
    return optimal + 1 if hint is PerformanceHint.LATENCY else 2 * optimal


class RequestPool:
    """``n`` infer requests of one compiled model, started round the pool, callbacks handed on.

    Used instead of ``openvino.AsyncInferQueue``: when ``start_async`` raises (a frame of the
    wrong shape, a device error), AsyncInferQueue never gets that request back, and once every
    request is lost the next ``start_async`` waits forever. Here a request whose start failed
    returns to the pool at once.
    """

    def __init__(self, compiled: Any, n: int, on_done: Callable[[ov.InferRequest, Any], None]) -> None:
        self._requests = [compiled.create_infer_request() for _ in range(n)]
        self._userdata: list[Any] = [None] * n
        self._idle = list(range(n))
        self._cond = threading.Condition()
        self._on_done = on_done
        for i, request in enumerate(self._requests):
            request.set_callback(self._finished, i)

    def start_async(self, image: npt.NDArray[Any], userdata: Any) -> None:
        """Start ``image`` (H x W x C) as a batch of one on the next idle request (waits for one);
        raises what OpenVINO raised.

        The request reads the image in place (``userdata`` must keep it alive until the callback).
        The tensor is set directly: ``start_async({0: array})`` goes through OpenVINO's Python
        input dispatcher, ~20-40 us more per frame.
        """
        with self._cond:
            while not self._idle:
                self._cond.wait()
            i = self._idle.pop()
        self._userdata[i] = userdata
        request = self._requests[i]
        try:
            request.set_input_tensor(ov.Tensor(np.ascontiguousarray(image[np.newaxis]), shared_memory=True))
            request.start_async()
        except BaseException:
            self._release(i)
            raise

    def _finished(self, i: int) -> None:
        # OpenVINO's thread. on_done never raises; the request is idle again only after it.
        try:
            self._on_done(self._requests[i], self._userdata[i])
        finally:
            self._userdata[i] = None
            self._release(i)

    def _release(self, i: int) -> None:
        with self._cond:
            self._idle.append(i)
            self._cond.notify_all()

    def wait_all(self) -> None:
        """Block until no request of the pool is running."""
        with self._cond:
            while len(self._idle) < len(self._requests):
                self._cond.wait()

