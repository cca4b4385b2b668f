"""Prometheus metrics read from the counters the pipeline already keeps.

Nothing on the hot path talks to ``prometheus_client``: the camera threads, the spool writer and
the MQTT threads keep plain integers (each written by one thread only), and
:class:`SnapshotCollector` turns a :class:`MetricsSnapshot` into metric families when
``GET /metrics`` is scraped. The one per-frame addition is :class:`LatencyHistogram.observe`, a
bisect and two additions in the ``spool-writer`` thread (which notes each numbered result), without
a lock: one writer; a scrape copies the bucket list in one C call, so it may read the sum one
frame apart from the counts, never a torn list.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from daemon.result import Result

__all__ = [
    "LATENCY_BUCKETS_MS",
    "RECENT_NOT_OK",
    "CameraStats",
    "CameraTally",
    "HistogramSnapshot",
    "LatencyHistogram",
    "MetricsSnapshot",
    "ModelInfo",
    "MqttStats",
    "SnapshotCollector",
]

# Inference latency buckets, in milliseconds (exported in seconds, as Prometheus expects).
RECENT_NOT_OK = 20  # results that were not OK kept per camera for the live page (GET /live)
LATENCY_BUCKETS_MS: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


class LatencyHistogram:
    """Cumulative-at-export histogram of inference latencies; one writer thread, no lock."""

    __slots__ = ("_bounds", "_counts", "_sum_ms")

    def __init__(self, bounds_ms: Sequence[float] = LATENCY_BUCKETS_MS) -> None:
        self._bounds = tuple(bounds_ms)
        self._counts = [0] * (len(self._bounds) + 1)  # the last one is +Inf
        self._sum_ms = 0.0

    def observe(self, ms: float) -> None:
        self._counts[bisect.bisect_left(self._bounds, ms)] += 1
        self._sum_ms += ms

    def snapshot(self) -> HistogramSnapshot:
        counts = list(self._counts)
        return HistogramSnapshot(self._bounds, tuple(counts), self._sum_ms)


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    bounds_ms: tuple[float, ...]
    counts: tuple[int, ...]  # per bucket, not cumulative; len = len(bounds) + 1
    sum_ms: float

    def cumulative_seconds(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip((*self.bounds_ms, float("inf")), self.counts, strict=True):
            total += count
            out.append(("+Inf" if bound == float("inf") else repr(bound / 1000.0), float(total)))
        return out


class CameraTally:
    """What the spool writer notes per numbered result of one camera: counts, latency, the last frame.

    One writer (the ``spool-writer`` thread), plain attribute writes, no lock; ``verdicts`` has its
    three keys from the start, so a reader's ``dict(verdicts)`` never meets a dict growing.
    ``latest`` keeps a reference to the frame and its record; nothing is copied or encoded here
    (``GET .../latest.jpg`` draws and encodes on request). ``recent_not_ok`` holds the records (not
    the frames) of the last :data:`RECENT_NOT_OK` results that were NG or ERROR, oldest first: a new
    tuple replaces the old one, so a reader in another thread always sees a whole one.
    """

    __slots__ = ("inferred", "latency", "latest", "recent_not_ok", "verdicts")

    def __init__(self) -> None:
        self.inferred = 0
        self.verdicts = {"OK": 0, "NG": 0, "ERROR": 0}
        self.latency = LatencyHistogram()
        self.latest: tuple[Any, Result] | None = None  # (image, its result)
        self.recent_not_ok: tuple[Result, ...] = ()  # the last NG/ERROR results, oldest first

    def note(self, image: Any, record: Result, verdict: str, latency_ms: float | None) -> None:
        self.inferred += 1
        self.verdicts[verdict] += 1
        if latency_ms is not None:
            self.latency.observe(latency_ms)
        self.latest = (image, record)
        if verdict != "OK":
            self.recent_not_ok = (*self.recent_not_ok[1 - RECENT_NOT_OK:], record)


@dataclass(frozen=True, slots=True)
class CameraStats:
    """One camera's counters since start."""

    id: str
    captured: int  # frames read from the source
    inferred: int  # results judged (any verdict)
    dropped: int  # replaced in a free-run slot before inference
    reconnects: int  # source failures followed by a reopen
    verdicts: Mapping[str, int]
    latency: HistogramSnapshot


@dataclass(frozen=True, slots=True)
class MqttStats:
    published: int
    delivered: int
    no_subscribers: int
    rejected: int
    reconnects: int
    awaiting_puback: int
    connected: bool


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    version: int
    device: str
    requested_device: str


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    cameras: Sequence[CameraStats] = ()
    mqtt: MqttStats | None = None
    model: ModelInfo | None = None


class SnapshotCollector(Collector):
    """A ``prometheus_client`` collector that asks ``source`` for a snapshot at every scrape."""

    def __init__(self, source: Callable[[], MetricsSnapshot]) -> None:
        self._source = source

    def describe(self) -> list[Metric]:
        return []  # unchecked collector: families are built at collect time

    def collect(self) -> Iterator[Metric]:
        snap = self._source()
        yield from _camera_families(snap.cameras)
        if snap.mqtt is not None:
            yield from _mqtt_families(snap.mqtt)
        if snap.model is not None:
            info = InfoMetricFamily("ovedge_model", "the model the cameras run")
            info.add_metric([], {
                "name": snap.model.name,
                "version": str(snap.model.version),
                "device": snap.model.device,
                "requested_device": snap.model.requested_device,
            })
            yield info


def _camera_families(cameras: Sequence[CameraStats]) -> Iterator[Metric]:
    captured = CounterMetricFamily("ovedge_frames_captured", "frames read from the camera", labels=["camera"])
    inferred = CounterMetricFamily("ovedge_frames_inferred", "frames inferred and judged", labels=["camera"])
    dropped = CounterMetricFamily(
        "ovedge_frames_dropped", "frames replaced in a free-run slot before inference", labels=["camera"]
    )
    reconnects = CounterMetricFamily(
        "ovedge_camera_reconnects", "camera source failures followed by a reopen", labels=["camera"]
    )
    results = CounterMetricFamily("ovedge_results", "results by verdict", labels=["camera", "verdict"])
    latency = HistogramMetricFamily(
        "ovedge_inference_latency_seconds", "infer request latency (the request's own)", labels=["camera"]
    )
    for c in cameras:
        captured.add_metric([c.id], c.captured)
        inferred.add_metric([c.id], c.inferred)
        dropped.add_metric([c.id], c.dropped)
        reconnects.add_metric([c.id], c.reconnects)
        for verdict in ("OK", "NG", "ERROR"):
            results.add_metric([c.id, verdict], c.verdicts.get(verdict, 0))
        latency.add_metric([c.id], c.latency.cumulative_seconds(), c.latency.sum_ms / 1000.0)
    yield from (captured, inferred, dropped, reconnects, results, latency)


def _mqtt_families(m: MqttStats) -> Iterator[Metric]:
    published = CounterMetricFamily("ovedge_mqtt_published", "results handed to the MQTT client")
    published.add_metric([], m.published)
    puback = CounterMetricFamily("ovedge_mqtt_puback", "PUBACKs for results by outcome", labels=["outcome"])
    puback.add_metric(["delivered"], m.delivered)
    puback.add_metric(["no_subscribers"], m.no_subscribers)
    puback.add_metric(["rejected"], m.rejected)
    reconnects = CounterMetricFamily("ovedge_mqtt_reconnects", "connections to the broker after the first")
    reconnects.add_metric([], m.reconnects)
    awaiting = GaugeMetricFamily("ovedge_mqtt_awaiting_puback", "results published, PUBACK not yet received")
    awaiting.add_metric([], m.awaiting_puback)
    connected = GaugeMetricFamily("ovedge_mqtt_connected", "1 while connected to the broker")
    connected.add_metric([], 1.0 if m.connected else 0.0)
    yield from (published, puback, reconnects, awaiting, connected)
