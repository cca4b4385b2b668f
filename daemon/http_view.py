"""The running daemon as the HTTP API sees it: :class:`daemon.http.view.DaemonView` over its parts.

Everything here reads state the pipeline keeps anyway (camera workers, the frame hub's drop
counts, the per-camera tallies of the decide thread, the publisher's counters, the engine's
current model); nothing is computed or copied until a request asks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from daemon.adhoc import AdhocModel
from daemon.http.view import CameraState, Latest, Readiness
from daemon.metrics import CameraStats, CameraTally, MetricsSnapshot, ModelInfo, MqttStats
from daemon.result import ResultRecord

if TYPE_CHECKING:
    from daemon.capture import CameraWorker
    from daemon.config import DaemonConfig
    from daemon.engine import Engine
    from daemon.publisher import Publisher
    from daemon.slots import FrameHub

__all__ = ["LiveView"]


class LiveView:
    """Implements :class:`daemon.http.view.DaemonView`; safe to call from the ``http`` thread."""

    def __init__(
        self,
        cfg: DaemonConfig,
        *,
        workers: Sequence[CameraWorker],
        hub: FrameHub[str],
        tallies: Mapping[str, CameraTally],
        engine: Callable[[], Engine | None],
        publisher: Callable[[], Publisher | None],
        status: Callable[[], dict[str, Any]],
    ) -> None:
        self._cfg = cfg
        self._workers = workers
        self._hub = hub
        self._tallies = tallies
        self._engine = engine
        self._publisher = publisher
        self._status = status

    @property
    def station(self) -> str:
        return self._cfg.station.name

    def camera_ids(self) -> Sequence[str]:
        return [c.id for c in self._cfg.cameras]

    def status(self) -> dict[str, Any]:
        pub = self._publisher()
        if pub is not None:
            return pub.status_document()
        return {"state": "starting", "station": self.station, **self._status()}

    def readiness(self) -> Readiness:
        engine, pub = self._engine(), self._publisher()
        cameras = tuple(
            CameraState(
                id=w.cfg.id,
                state="finished" if w.finished.is_set() else "reconnecting" if w.last_error else "running",
                error=w.last_error,
            )
            for w in self._workers
        )
        reasons = []
        if engine is None:
            reasons.append("the model is not loaded yet")
        connected = pub is not None and pub.connected
        if not connected:
            reasons.append("not connected to the MQTT broker")
        reasons += [f"camera {c.id}: {c.error}" for c in cameras if c.state == "reconnecting"]
        health, problem = pub.health if pub is not None else ("online", None)  # one read: the spool writer sets it
        if health == "degraded":
            reasons.append(f"results cannot be stored: {problem}")
        model = engine.model.loaded if engine is not None else None
        return Readiness(
            ready=not reasons,
            model=f"{model.label} on {model.device.device}" if model is not None else None,
            mqtt_connected=connected,
            cameras=cameras,
            reasons=tuple(reasons),
        )

    def metrics(self) -> MetricsSnapshot:
        dropped = self._hub.dropped()
        cameras = [
            CameraStats(
                id=w.cfg.id,
                captured=w.frames,
                inferred=self._tallies[w.cfg.id].inferred,
                dropped=dropped.get(w.cfg.id, 0),
                reconnects=w.failures,
                verdicts=dict(self._tallies[w.cfg.id].verdicts),
                latency=self._tallies[w.cfg.id].latency.snapshot(),
            )
            for w in self._workers
        ]
        pub = self._publisher()
        mqtt = None
        if pub is not None:
            c = pub.counters
            mqtt = MqttStats(published=c.published, delivered=c.delivered, no_subscribers=c.no_subscribers,
                             rejected=c.rejected, reconnects=c.reconnects, awaiting_puback=pub.outstanding(),
                             connected=pub.connected)
        engine = self._engine()
        model = None
        if engine is not None:
            m = engine.model.loaded
            model = ModelInfo(m.name, m.version.version, m.device.device, self._cfg.model.device)
        return MetricsSnapshot(cameras=cameras, mqtt=mqtt, model=model)

    def adhoc_model(self) -> AdhocModel | None:
        engine = self._engine()
        if engine is None:
            return None
        active = engine.model  # the model new frames go to; after a swap, the new one
        return AdhocModel(active.loaded, active.adhoc) if active.adhoc is not None else None

    def latest(self, camera: str) -> Latest | None:
        tally = self._tallies.get(camera)
        latest = tally.latest if tally is not None else None
        if latest is None:
            return None
        image, result = latest
        return Latest(image, result.record())  # the validated model, built on request only

    def recent_not_ok(self) -> Sequence[ResultRecord]:
        results = [r for t in self._tallies.values() for r in t.recent_not_ok]
        results.sort(key=lambda r: r.seq, reverse=True)  # seq: station-wide, increasing
        return [r.record() for r in results]  # validated models, built on request only
