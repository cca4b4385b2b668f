"""Everything checked before a model serves frames, in one order, for start-up, check-config and swaps.

1. **resolve** the version in the store (:class:`ModelStore`, built once per daemon);
2. **verify**: the Ed25519 signature over the manifest (when ``model.trusted_keys``; the keys are
   read once), then the files against the manifest's SHA-256 hashes (when ``model.verify_hashes``).
   Signature first: the hashes come from the manifest, so the manifest is authenticated before it
   is trusted to judge the files, and refusing an unsigned version costs no hashing of a large
   ``model.bin``;
3. **load**: read the IR and its metadata, choose the device, compile, pick the post-processor
   (:meth:`LoadedModel.load`), and build every camera's rules against the model's labels (and the
   ``[rules]`` decider for HTTP ad-hoc images when ``[http]`` is enabled);
4. **self-test**: the golden frame recorded by the converter, run on the compiled model, must give
   the recorded outputs within the manifest's ``atol`` and post-process cleanly (:func:`self_test`);
5. **cameras**: every camera opens once;
6. **broker**: the MQTT broker accepts a connection;
7. **http** (when ``[http] enabled``): the bearer token can be read, and one exists when the API
   is bound off loopback (:func:`daemon.config.http.resolve_token`); the port is bound when the
   server starts.

Steps 1-4 are :class:`ModelLoader`: the first model and every hot-swapped version go through the
same :meth:`ModelLoader.load`, so the model the daemon starts with is self-tested too.
:func:`run_preflight` runs the steps for ``ovedged check-config`` (``--no-broker`` leaves out step
6) and for ``ovedged run`` (which leaves step 6 to the publisher: it connects at start-up and
refuses to start when ``mqtt.require_at_start`` and the broker does not answer).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

import cv2
import numpy as np

from daemon.config import DaemonConfig
from daemon.config.http import resolve_token
from daemon.decision import Decider
from daemon.engine import ActiveModel, LoadedModel, infer_once, largest_difference
from ovedge.errors import CameraError, ModelError, ModelFileError, OvedgeError, openvino_message
from ovedge.signing import TrustedKeys
from ovedge.store import ModelStore, ModelVersion

__all__ = ["ModelLoader", "check_cameras", "run_preflight", "self_test"]

log = logging.getLogger(__name__)


def _quiet(_line: str) -> None:
    """The default ``report``: say nothing."""


class ModelLoader:
    """Resolve, verify, load and self-test versions of the configured model (steps 1-4).

    Built once per daemon: the store, the trusted keys and the compile cache folder are decided
    here; :meth:`load` is called for the first model and by the swapper for every new version.
    ``core`` is the ``openvino.Core`` all versions are compiled with.
    """

    def __init__(self, cfg: DaemonConfig, core: Any) -> None:
        self._cfg = cfg
        self._core = core
        self.store = ModelStore(cfg.model.store)
        keys = list(cfg.model.trusted_keys)
        self.trusted_keys = TrustedKeys(keys) if keys else None  # read once: a bad key fails start-up
        self.cache_dir = cfg.cache_dir() if cfg.model.cache else None
        self._cache_ready = False

    @property
    def name(self) -> str:
        return self._cfg.model.name

    def resolve(self, version: int | Literal["latest"]) -> ModelVersion:
        """Step 1: the version's folder and manifest (:class:`ModelError` when it is not there)."""
        return self.store.resolve(self.name, version)

    def verify(self, version: ModelVersion) -> None:
        """Step 2: signature over the manifest (with trusted keys), then the files against its hashes."""
        if self.trusted_keys is not None:
            self.trusted_keys.verify(version.manifest)
        if self._cfg.model.verify_hashes:
            version.verify_files()

    def compile(self, version: ModelVersion) -> LoadedModel:
        """Step 3: read the IR, choose the device, compile (with the blob cache when configured)."""
        if self.cache_dir is not None and not self._cache_ready:
            try:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ModelFileError(
                    what=f"model cache folder {self.cache_dir}",
                    problem=f"cannot be created ({exc.strerror})",
                    fix="set model.cache_dir or model.cache = false",
                ) from exc
            self._cache_ready = True
        return LoadedModel.load(self._core, version, self._cfg.model, cache_dir=self.cache_dir)

    def use_rules(self, cfg: DaemonConfig) -> None:
        """A reloaded config's rules (``[rules]``, ``[cameras.rules]``) for :meth:`rules` from now on."""
        self._cfg = self._cfg.model_copy(update={"rules": cfg.rules, "cameras": cfg.cameras})

    def rules(self, loaded: LoadedModel) -> dict[str, Decider]:
        """Step 3, second half: every camera's rules checked against this model's labels."""
        cfg = self._cfg
        return {
            cam.id: Decider.build(cfg.rules_for(cam), loaded.meta, camera=cam.id)
            for cam in cfg.cameras
        }

    def adhoc_rules(self, loaded: LoadedModel) -> Decider | None:
        """The ``[rules]`` section checked against this model's labels, for HTTP ad-hoc images."""
        if not self._cfg.http.enabled:
            return None
        return Decider.build(self._cfg.rules, loaded.meta, camera="http (ad-hoc inspection, [rules])")

    def load(self, version: int | Literal["latest"], *, report: Callable[[str], None] = _quiet) -> ActiveModel:
        """Steps 1-4: an :class:`ActiveModel` ready to serve, or an :class:`OvedgeError` saying why not.

        ``report`` gets one line per step passed (``check-config`` prints them, ``run`` logs them).
        """
        resolved = self.resolve(version)
        self.verify(resolved)
        checks = [n for n, on in (("signature", self.trusted_keys), ("hashes", self._cfg.model.verify_hashes)) if on]
        verified = ", ".join(checks) or "nothing"
        report(f"model: {resolved.name} v{resolved.version} at {resolved.path} (verified: {verified})")
        loaded = self.compile(resolved)
        fell = f"; fell back: {loaded.device.reason}" if loaded.device.fell_back else ""
        report(
            f"device: {loaded.device.device} (execution devices {','.join(loaded.execution_devices) or '?'}, "
            f"{loaded.num_requests} infer requests){fell}"
        )
        deciders = self.rules(loaded)
        active = ActiveModel(loaded, deciders, golden_diff=self_test(loaded), adhoc=self.adhoc_rules(loaded))
        report(f"self-test: {loaded.label} reproduces its golden sample within {active.golden_diff:.3g}")
        return active


class SelfTestError(ModelError):
    """A model does not reproduce its golden sample (or cannot run it): refused before it judges a part."""

    def __init__(self, label: str, problem: str, detail: object = "", *, failed: bool = True) -> None:
        self.label = label  # "model NAME vN"
        self.problem = problem
        self.detail = detail
        text = f"{label}: self-test failed: {problem}" if failed else f"{label}: {problem}"
        super().__init__(f"{text}: {detail}" if detail != "" else text)


class CameraCheckError(CameraError):
    """A configured camera does not open at preflight; names the camera and keeps the source's reason."""

    def __init__(self, camera: str, cause: CameraError) -> None:
        self.camera = camera
        self.cause = cause
        super().__init__(f"camera {camera!r}: {cause}")


def self_test(model: LoadedModel) -> float:
    """Step 4: run the manifest's golden frame on ``model``; return the largest output difference.

    Raises :class:`ModelError` when there is no golden sample, it cannot be read, an output
    differs by more than its ``atol``, or post-processing fails on the outputs.
    """
    version = model.version
    label = model.label
    golden = version.manifest.golden
    if golden is None:
        raise ModelFileError(
            what=label, problem="has no golden sample in its manifest", fix="convert it again with ovedge-convert"
        )
    frame = cv2.imread(str(version.path / golden.input), cv2.IMREAD_COLOR)
    if frame is None:
        raise ModelFileError(what=label, detail=f"golden frame {version.path / golden.input} cannot be read")
    try:
        with np.load(version.path / golden.outputs) as npz:
            expected = [np.asarray(npz[str(i)]) for i in range(len(npz.files))]
    except (OSError, ValueError, KeyError) as exc:
        raise ModelFileError(
            what=label, detail=f"golden outputs {version.path / golden.outputs} cannot be read ({exc})"
        ) from exc
    try:
        actual = infer_once(model.compiled, frame)
    except RuntimeError as exc:
        raise SelfTestError(label, "the golden frame does not run", openvino_message(exc), failed=False) from exc
    if len(actual) != len(expected):
        raise SelfTestError(label, f"{len(actual)} outputs, the golden sample recorded {len(expected)}")
    worst = 0.0
    for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
        if got.shape != want.shape:
            raise SelfTestError(
                label, f"output {index} has shape {list(got.shape)}, the golden sample recorded {list(want.shape)}"
            )
        diff = largest_difference(got, want)
        worst = max(worst, diff)
        if not diff <= golden.atol:  # also catches NaN
            raise SelfTestError(
                label, f"output {index} differs from the golden sample by {diff:.4g} (allowed {golden.atol:.4g})"
            )
    try:
        model.postprocess(actual, frame.shape[:2])
    except (OvedgeError, ValueError, IndexError) as exc:
        raise SelfTestError(label, "post-processing the golden outputs", exc) from exc
    return worst


def check_cameras(cfg: DaemonConfig) -> None:
    """Step 5: open every camera once; the first that does not open fails with its id."""
    from camera import open_source

    for cam in cfg.cameras:
        try:
            with open_source(cam.source):
                pass
        except CameraError as exc:
            raise CameraCheckError(cam.id, exc) from exc


def run_preflight(
    cfg: DaemonConfig,
    loader: ModelLoader,
    *,
    broker: bool = True,
    report: Callable[[str], None] = log.info,
) -> ActiveModel:
    """Steps 1-6 for the configured version; ``report`` gets one line per step passed.

    Returns the model ready to serve; raises the first step's :class:`OvedgeError`.
    """
    active = loader.load(cfg.model.version, report=report)
    check_cameras(cfg)
    report(f"cameras: {', '.join(c.id for c in cfg.cameras)} open")
    if broker:
        from daemon.publisher import probe_broker

        probe_broker(cfg)
        report(f"mqtt: broker {cfg.mqtt.host}:{cfg.mqtt.port} accepted a connection")
    if cfg.http.enabled:
        token = resolve_token(cfg.http)
        report(f"http: API on {cfg.http.host}:{cfg.http.port}, "
               f"{'bearer token required' if token else 'no token: loopback only'}")
    return active
