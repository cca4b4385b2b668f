"""The OpenVINO-side measurements: ``benchmark_app``, our engine loop, and the daemon end to end.

Each function returns a plain dict (the row's figures) so ``run.py`` can put it in JSON as is.
Nothing here asserts on time; figures are reported, targets are judged in ``report.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

log = logging.getLogger(__name__)

BENCHMARK_APP = Path(sys.executable).with_name("benchmark_app")


def cpu_seconds(who: int) -> float:
    """User + system CPU seconds of this process (``resource.RUSAGE_SELF``) or of its waited-for
    children (``RUSAGE_CHILDREN``): deltas of it give the CPU a row cost, all threads included."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all processes, all cores), from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text(encoding="ascii").splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class Others:
    """CPU taken by everyone else on the machine while a row ran, as a share of all cores.

    ``with Others() as o: ...; o.ours = <our CPU seconds>`` then ``o.share``.
    """

    def __enter__(self) -> Others:
        self.t0, self.busy0, self.ours = time.perf_counter(), busy_seconds(), 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.busy = busy_seconds() - self.busy0

    @property
    def share(self) -> float:
        cores = os.cpu_count() or 1
        return round(max(0.0, self.busy - self.ours) / (self.wall * cores), 3) if self.wall > 0 else 0.0


class ThreadCPU:
    """CPU seconds of each thread of this process while the block ran, from ``/proc/self/task``.

    A sampler thread reads every thread's user + system time every ``interval`` s (a thread that
    ends keeps its last sample; at the end of a run the pipeline is idle, so little is lost).
    Python threads are named from ``threading.enumerate()``; the others (OpenVINO's TBB workers,
    which also run its request callbacks) are summed as ``native (OpenVINO)``; paho's network
    thread is ``paho network thread``.
    """

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, interval: float = 0.1) -> None:
        self._interval = interval
        self._names: dict[int, str] = {}
        self._last: dict[int, float] = {}
        self._start: dict[int, float] = {}
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, name="bench-thread-cpu", daemon=True)

    @classmethod
    def _read(cls) -> dict[int, float]:
        out = {}
        for entry in Path("/proc/self/task").iterdir():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[int(entry.name)] = (int(fields[11]) + int(fields[12])) / cls.TICK  # utime, stime
        return out

    def _snapshot(self) -> None:
        for t in threading.enumerate():
            if t.native_id is not None:
                self._names[t.native_id] = t.name
        self._last.update(self._read())

    def _sample(self) -> None:
        while not self._done.wait(self._interval):
            self._snapshot()

    def __enter__(self) -> ThreadCPU:
        self._start = self._read()
        self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._sampler.join()
        self._snapshot()

    def per_frame_ms(self, frames: int) -> dict[str, float]:
        """ms of CPU per frame by thread name (biggest first), the sampler itself left out."""
        per: dict[str, float] = {}
        for tid, cpu in self._last.items():
            name = self._names.get(tid, "native (OpenVINO)")
            if name.startswith("paho-mqtt-client"):
                name = "paho network thread"
            elif name == "bench-thread-cpu":
                continue
            per[name] = per.get(name, 0.0) + cpu - self._start.get(tid, 0.0)
        return {k: round(v * 1000.0 / frames, 3) for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if v > 0}


def load() -> float:
    """1-minute load average (the machine is shared: every row records it)."""
    return round(os.getloadavg()[0], 2)


def model_pass_parser(doc: str | None, *, frames: int) -> argparse.ArgumentParser:
    """The arguments of a one-model pass script (``thread_cpu.py``, ``stages.py``): the store, the
    model's name and version, the camera's frame size and the number of frames."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("store", type=Path)
    ap.add_argument("name")
    ap.add_argument("version", type=int)
    ap.add_argument("--size", default="256x256", help="camera frame WxH")
    ap.add_argument("--frames", type=int, default=frames)
    return ap


# -- benchmark_app ------------------------------------------------------------------------------

_THROUGHPUT = re.compile(r"Throughput:\s+([\d.]+)\s+FPS")
_MEDIAN = re.compile(r"Median:\s+([\d.]+)\s+(ms|us)")
_COUNT = re.compile(r"Count:\s+(\d+)\s+iterations")
_NIREQ = re.compile(r"OPTIMAL_NUMBER_OF_INFER_REQUESTS:\s+(\d+)")


def benchmark_app(
    xml: Path, *, hint: str, frame_shape: tuple[int, int], seconds: int, static: bool = False
) -> dict[str, Any]:
    """``benchmark_app`` on the IR fed u8 NHWC frames of the camera's shape.

    The IR keeps its dynamic spatial input (as the daemon compiles it); ``-data_shape`` makes
    benchmark_app feed ``[1, H, W, 3]`` so both sides run the same in-graph resize, and
    ``-inference_only true`` keeps input filling out of its loop (the default for static models).
    ``static=True`` instead reshapes the model to that shape (``-shape``): what a daemon that
    reshaped the IR to its camera at load time would get.
    """
    h, w = frame_shape
    cmd = [str(BENCHMARK_APP), "-m", str(xml), "-d", "CPU", "-hint", hint, "-t", str(seconds)]
    if static:
        cmd += ["-shape", f"[1,{h},{w},3]"]
    else:
        cmd += ["-data_shape", f"[1,{h},{w},3]", "-inference_only", "true"]
    before = load()
    cpu0 = cpu_seconds(resource.RUSAGE_CHILDREN)
    with Others() as others:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=seconds * 6 + 120)
        cpu = others.ours = cpu_seconds(resource.RUSAGE_CHILDREN) - cpu0
    out = proc.stdout + proc.stderr
    fps, median = _THROUGHPUT.search(out), _MEDIAN.search(out)
    if proc.returncode != 0 or fps is None or median is None:
        tail = "\n".join(out.strip().splitlines()[-8:])
        raise RuntimeError(f"benchmark_app failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")
    count = _COUNT.search(out)
    nireq = _NIREQ.search(out)
    return {
        "fps": float(fps.group(1)),
        "median_ms": float(median.group(1)) / (1000.0 if median.group(2) == "us" else 1.0),
        "iterations": int(count.group(1)) if count else None,
        "cpu_ms_per_frame": round(cpu * 1000.0 / int(count.group(1)), 3) if count else None,
        "requests": int(nireq.group(1)) if nireq else None,
        "load_before": before,
        "load_after": load(),
        "others_cpu_share": others.share,
        "command": " ".join(cmd[1:]).replace(str(xml), xml.name),
    }


# -- our engine loop ----------------------------------------------------------------------------


def _model_cfg(store: Path, name: str, version: int, hint: str) -> Any:
    from daemon.config import ModelConfig

    return ModelConfig(store=store, name=name, version=version, hint=hint, cache=False)


def engine_loop(
    store: Path, name: str, version: int, *, hint: str, frames: list[np.ndarray], count: int, warmup: int
) -> dict[str, Any]:
    """``Engine.submit`` / ``take`` on pre-decoded camera frames, one feeder thread, results taken here.

    FPS counts the results after ``warmup`` over the time between the warm-up's last result and
    the final one; latency is each request's own (``InferenceDone.latency_ms``).
    """
    import openvino as ov

    from camera.frame import Frame
    from daemon.engine import ActiveModel, Engine, LoadedModel
    from daemon.preflight import self_test
    from ovedge.store import ModelStore

    core = ov.Core()
    version_obj = ModelStore(store).resolve(name, version)
    cfg = _model_cfg(store, name, version, hint)
    model = LoadedModel.load(core, version_obj, cfg, cache_dir=None)
    # As the daemon runs it (model.static_shapes): the clock starts once the frames' static-shape
    # copy serves them (warm-up: the first ``warmup`` results and the copy's compile).
    engine = Engine(ActiveModel(model, {}, golden_diff=self_test(model)), static_shapes=cfg.static_shapes)
    shape = frames[0].shape
    stop = threading.Event()

    def feed() -> None:
        i = 0
        while not stop.is_set():
            if engine.submit(Frame(frames[i % len(frames)], i, time.time(), time.monotonic()), i, timeout=0.1):
                i += 1

    before = load()
    cpu0 = cpu_seconds(resource.RUSAGE_SELF)
    others = Others().__enter__()
    feeder = threading.Thread(target=feed, name="bench-feeder", daemon=True)
    feeder.start()
    latencies: list[float] = []
    start = end = 0.0
    taken = 0
    settle_until = time.monotonic() + 60.0
    while len(latencies) < count:
        item = engine.take(timeout=60)
        if item is None or item.error is not None:
            raise RuntimeError(f"engine loop: result {taken} failed: {None if item is None else item.error}")
        taken += 1
        now = time.perf_counter()
        if start:
            latencies.append(item.latency_ms)
            end = now
        elif taken >= warmup and (not cfg.static_shapes or shape in engine.static_shapes
                                  or time.monotonic() > settle_until):
            start = now
    stop.set()
    feeder.join()
    engine.drain()
    while engine.take_batch(timeout=0.05):
        pass
    total = taken
    cpu = others.ours = cpu_seconds(resource.RUSAGE_SELF) - cpu0
    others.__exit__()
    return {
        "fps": count / (end - start),
        "median_ms": statistics.median(latencies),
        "frames": count,
        "cpu_ms_per_frame": round(cpu * 1000.0 / total, 3),
        "requests": model.num_requests,
        "load_before": before,
        "load_after": load(),
        "others_cpu_share": others.share,
    }


# -- the daemon end to end ----------------------------------------------------------------------


def write_video(path: Path, frames: list[np.ndarray], count: int) -> Path:
    """An uncompressed I420 .avi of ``count`` frames cycling through ``frames``.

    Raw like an industrial camera's stream: reading it costs a YUV->BGR conversion, no decoding,
    so the camera is not what limits the daemon (its rate is measured by :func:`camera_rate`).
    """
    import cv2

    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"I420"), 30.0, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write an I420 .avi at {path}")
    for i in range(count):
        writer.write(frames[i % len(frames)])
    writer.release()
    return path


def camera_rate(video: Path, limit: int = 300) -> dict[str, Any]:
    """How fast the video source alone delivers frames (read + BGR conversion), frames/s."""
    from camera.config import VideoFileSourceConfig
    from camera.opencv_source import VideoFileSource

    n = 0
    with VideoFileSource(VideoFileSourceConfig(path=video)) as src:
        t0 = time.perf_counter()
        while n < limit and src.read() is not None:
            n += 1
        dt = time.perf_counter() - t0
    return {"fps": n / dt, "frames": n}


def config_text(
    store: Path, name: str, version: int, hint: str, video: Path, fps: float, port: int, state: Path
) -> str:
    """The daemon's config for one e2e pass: one ``every-frame`` video camera, the broker on ``port``."""
    return f"""
[station]
name = "bench"
[model]
store = "{store}"
name = "{name}"
version = {version}
hint = "{hint}"
cache = false
[[cameras]]
id = "cam0"
mode = "every-frame"
[cameras.source]
type = "video"
path = "{video}"
fps = {fps}
[mqtt]
port = {port}
[state]
dir = "{state}"
[logging]
level = "WARNING"
"""


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _watch_static_shapes(daemon: Any, stop: threading.Event) -> list[float]:
    """A list that gets the time (epoch) at which the daemon's status first lists a static-shape copy."""
    found: list[float] = []

    def watch() -> None:
        while not found and not stop.wait(0.1):  # a status every 0.1 s: light beside the run it measures
            if daemon.status()["model"].get("static_shapes"):
                found.append(time.time())

    threading.Thread(target=watch, name="bench-static-watch", daemon=True).start()
    return found


PROBE_TOPIC = "ovedge-bench/probe"


def start_listener(port: int, topic: str, count: int, out: Any, path: Path) -> subprocess.Popen[bytes]:
    """The benchmark's MQTT consumer: ``mosquitto_sub`` (C, its own process, as a line's MES client
    would be; ~10x less CPU per message than a Python paho client, so it takes less of the cores the
    daemon is measured on). It stamps each message on arrival (``%U``, epoch with nanoseconds),
    QoS 1, and exits after ``count`` results. Returns once it is subscribed: a probe message
    published until it shows up in its output.
    """
    proc = subprocess.Popen(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", topic, "-t", PROBE_TOPIC,
         "-C", str(count + 1), "-F", "%U %t %p"],
        stdout=out, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30.0
    while PROBE_TOPIC.encode() not in path.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the MQTT listener (mosquitto_sub) did not subscribe")
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", PROBE_TOPIC, "-m", "probe"],
                       check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
        time.sleep(0.1)
    return proc


def read_listener(path: Path, topic: str) -> list[tuple[float, str]]:
    """``(arrival epoch, payload)`` of every result :func:`start_listener` wrote (probes left out)."""
    received = []
    for line in path.read_text(encoding="utf-8").splitlines():
        stamp, got_topic, payload = line.split(" ", 2)
        if got_topic == topic:
            received.append((float(stamp), payload))
    return received


def daemon_e2e(
    store: Path,
    name: str,
    version: int,
    *,
    hint: str,
    video: Path,
    frames: int,
    fps: float,
    warmup: int,
    workdir: Path,
    settle_s: float = 0.0,
) -> dict[str, Any]:
    """The daemon in this process (camera -> engine -> decision -> MQTT), a private Mosquitto, and
    a subscriber in its own process (``listen.py``); figures come from what the subscriber receives.

    FPS: results received after ``warmup``, over the time between the warm-up's last and the
    final message. Latency: receive time minus the frame's capture time (``frame.captured``;
    both are ``time.time()`` on this machine), i.e. capture to publish plus the broker hop.
    """
    from daemon.app import Daemon
    from daemon.config import load_config
    from tools.mosquitto import Mosquitto

    workdir.mkdir(parents=True, exist_ok=True)
    got = workdir / "received.txt"
    with Mosquitto() as broker:
        cfg_path = workdir / "config.toml"
        cfg_path.write_text(
            config_text(store, name, version, hint, video, fps, broker.port, workdir / "state"), encoding="utf-8"
        )
        # OVEDGE_BENCH_SET="model.static_shapes=false;spool.batch_ms=2": --set overrides for A/B runs.
        cfg = load_config(cfg_path, [o for o in os.environ.get("OVEDGE_BENCH_SET", "").split(";") if o])
        topic = f"{cfg.station.topic_prefix}/{cfg.station.name}/cam0/result"
        before = load()
        with got.open("wb") as out:
            listener = start_listener(broker.port, topic, frames, out, got)
        try:
            self0 = cpu_seconds(resource.RUSAGE_SELF)
            daemon, ended = Daemon(cfg, until_sources_end=True), threading.Event()
            static_at = _watch_static_shapes(daemon, ended)
            with Others() as others, ThreadCPU() as threads:
                daemon.run(threading.Event())  # returns when the video has ended
                daemon_cpu = cpu_seconds(resource.RUSAGE_SELF) - self0
            ended.set()
            child0 = cpu_seconds(resource.RUSAGE_CHILDREN)
            listener.wait(timeout=60)
            listener_cpu = cpu_seconds(resource.RUSAGE_CHILDREN) - child0
        finally:
            if listener.poll() is None:
                listener.kill()
                listener.wait()
        child0 = cpu_seconds(resource.RUSAGE_CHILDREN)
    broker_cpu = cpu_seconds(resource.RUSAGE_CHILDREN) - child0
    others.ours = daemon_cpu + broker_cpu + listener_cpu  # ours ran meanwhile (listener/broker: nearly all)
    received = read_listener(got, topic)
    if len(received) < frames:
        raise RuntimeError(f"daemon end to end: {len(received)} of {frames} results received")
    msgs = [(t, json.loads(p)) for t, p in received]
    # Warm-up: the first ``warmup`` results, and those received before the frames' static-shape copy
    # of the model served (status "static_shapes"; compiled after the first frame), or, when no copy
    # came, within ``settle_s`` of the first result. The steady state a line runs in follows.
    steady_from = static_at[0] if static_at else msgs[0][0] + settle_s
    warmup = max(warmup, next((i for i, (t, _) in enumerate(msgs) if t >= steady_from), len(msgs)))
    if len(msgs) - warmup < len(msgs) // 2:
        raise RuntimeError(f"daemon end to end: only {len(msgs) - warmup} of {len(msgs)} results after the "
                           f"{settle_s:g} s warm-up; give it more frames")
    verdicts = {m["verdict"] for _, m in msgs}
    steady = msgs[warmup:]
    latency = [(t - _epoch(m["frame"]["captured"])) * 1000.0 for t, m in steady]
    span = msgs[-1][0] - msgs[warmup - 1][0]
    decided = sorted(_epoch(m["time"]) for _, m in msgs)  # when the daemon built each record
    decided_span = decided[-1] - decided[warmup - 1]
    return {
        "fps": (len(msgs) - warmup) / span if span > 0 else 0.0,
        "fps_by_decision_time": (len(msgs) - warmup) / decided_span if decided_span > 0 else 0.0,
        "median_ms": statistics.median(latency),
        "p90_ms": float(np.percentile(latency, 90)),
        "inference_median_ms": statistics.median(m["timings"]["inference_ms"] for _, m in steady),
        "capture_to_result_median_ms": statistics.median(m["timings"]["capture_to_result_ms"] for _, m in steady),
        "frames": len(msgs) - warmup,
        "cpu_ms_per_frame": round(daemon_cpu * 1000.0 / len(msgs), 3),
        "broker_cpu_ms_per_frame": round(broker_cpu * 1000.0 / len(msgs), 3),
        "listener_cpu_ms_per_frame": round(listener_cpu * 1000.0 / len(msgs), 3),
        "thread_cpu_ms_per_frame": threads.per_frame_ms(len(msgs)),
        "camera_fps": fps,
        "verdicts": sorted(verdicts),
        "load_before": before,
        "load_after": load(),
        "others_cpu_share": others.share,
    }
