"""What the HTTP tests share: a real demo model, and a DaemonView over it without the whole daemon.

The view is the seam the HTTP API is built against (``daemon.http.view.DaemonView``): the model,
the rules and the counters in it are real objects; only the daemon's threads are absent.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import openvino as ov

from camera.synthetic import DefectGenerator
from daemon.adhoc import AdhocModel
from daemon.config import ModelConfig, Rules
from daemon.decision import Decider
from daemon.engine import LoadedModel
from daemon.http.view import CameraState, Latest, Readiness
from daemon.metrics import CameraStats, LatencyHistogram, MetricsSnapshot, ModelInfo, MqttStats
from daemon.result import ResultRecord
from ovedge.store import ModelStore

CAMERAS = ("cam0", "cam1")


def load_demo(store: Path) -> LoadedModel:
    version = ModelStore(store).resolve("demo")
    return LoadedModel.load(ov.Core(), version, ModelConfig(name="demo", cache=False), cache_dir=None)


def synthetic_jpeg(index: int, *, seed: int = 3, size: int = 160, quality: int = 90) -> bytes:
    image, _ = DefectGenerator(seed, size, size, defect_rate=0.7).render(index)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


@dataclass
class DemoView:
    """A DaemonView over a real compiled model; ``gate`` (when set) holds ad-hoc work inside its slot."""

    model: LoadedModel | None
    station: str = "station-http"
    gate: threading.Event | None = None
    entered: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    latest_frames: dict[str, Latest] = field(default_factory=dict)
    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    verdicts: Counter[str] = field(default_factory=Counter)
    not_ok: list[ResultRecord] = field(default_factory=list)  # newest first

    def camera_ids(self) -> Sequence[str]:
        return CAMERAS

    def status(self) -> dict[str, Any]:
        return {"schema": "ovedge.status/1", "state": "online", "station": self.station,
                "cameras": list(CAMERAS)}

    def readiness(self) -> Readiness:
        loaded = self.model is not None
        return Readiness(
            ready=loaded,
            model=f"{self.model.label} on {self.model.device.device}" if self.model else None,
            mqtt_connected=True,
            cameras=tuple(CameraState(id=c, state="running") for c in CAMERAS),
            reasons=() if loaded else ("the model is not loaded yet",),
        )

    def metrics(self) -> MetricsSnapshot:
        cams = [
            CameraStats(id=c, captured=10 + i, inferred=9 + i, dropped=1, reconnects=i,
                        verdicts=dict(self.verdicts), latency=self.histogram.snapshot())
            for i, c in enumerate(CAMERAS)
        ]
        mqtt = MqttStats(published=19, delivered=17, no_subscribers=1, rejected=1, reconnects=2,
                         awaiting_puback=0, connected=True)
        model = None
        if self.model is not None:
            model = ModelInfo(self.model.name, self.model.version.version, self.model.device.device, "CPU")
        return MetricsSnapshot(cameras=cams, mqtt=mqtt, model=model)

    def adhoc_model(self) -> AdhocModel | None:
        self.entered.release()
        if self.gate is not None:
            self.gate.wait(30)
        if self.model is None:
            return None
        return AdhocModel(self.model, Decider.build(Rules(), self.model.meta, camera="http"))

    def latest(self, camera: str) -> Latest | None:
        return self.latest_frames.get(camera)

    def recent_not_ok(self) -> Sequence[ResultRecord]:
        return self.not_ok


def png_bytes(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()
