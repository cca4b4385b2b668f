"""Hot model swap on real IRs in a real store: self-test, rejection, signatures, SIGHUP, and under load."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from camera.frame import Frame
from daemon.config import load_config
from daemon.engine import ActiveModel, Engine, InferenceDone
from daemon.preflight import ModelLoader, self_test
from daemon.swap import ModelSwapper, install_sighup
from ovedge.errors import ModelError
from ovedge.irmeta import GoldenSample, IRMeta, Manifest, Preprocessing, write_rt_info
from ovedge.signing import generate_keypair, sign_manifest
from ovedge.store import MANIFEST, ModelStore, digest_file
from tests.configs import write_config

NAME = "widget"
LABELS = ("ok", "scratch", "dent")
# The frame every test feeds: channel means (10, 20, 30); logits = means * weights of the version.
IMAGE = np.dstack([np.full((24, 20), v, np.uint8) for v in (10, 20, 30)])
SCRATCH = (1.0, 2.0, 0.0)  # logits (10, 40, 0) -> "scratch"
DENT = (1.0, 0.0, 2.0)  # logits (10, 0, 60) -> "dent"
CORE = ov.Core()


def _ir(folder: Path, weights: tuple[float, float, float]) -> Path:
    """A classifier taking raw u8 BGR frames of any size: logits = channel means * weights."""
    param = ops.parameter(ov.PartialShape([1, -1, -1, 3]), ov.Type.u8, name="frame")
    means = ops.reduce_mean(ops.convert(param, "f32"), [1, 2])
    logits = ops.multiply(means, ops.constant(np.array([weights], np.float32)))
    model = ov.Model([logits.output(0)], [param], "widget")
    meta = IRMeta(
        task="classification",
        output_layout="logits",
        labels=LABELS,
        ok_labels=("ok",),
        preprocessing=Preprocessing(input_width=32, input_height=32),
    )
    write_rt_info(model, meta)
    xml = folder / "model.xml"
    ov.save_model(model, xml)
    return xml


def publish(
    store: ModelStore,
    weights: tuple[float, float, float],
    *,
    golden_shift: float = 0.0,
    golden: bool = True,
    sign_with: Path | None = None,
    tamper: Callable[[Path], None] | None = None,
) -> int:
    """Write a complete version (IR, golden sample, manifest) the way the converter does."""
    number = store.next_version(NAME)
    with store.staging(NAME) as staged:
        xml = _ir(staged, weights)
        sample = None
        if golden:
            cv2.imwrite(str(staged / "golden.png"), IMAGE)
            out = CORE.compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(IMAGE[None])
            np.savez(staged / "golden_outputs.npz", **{"0": np.asarray(out[0]) + golden_shift})
            sample = GoldenSample(input="golden.png", outputs="golden_outputs.npz", atol=0.05)
        files = {p.name: digest_file(p) for p in sorted(staged.iterdir())}
        manifest = Manifest(
            name=NAME,
            version=number,
            created_utc="2026-11-25T20:00:00Z",
            precision="fp32",
            meta=IRMeta.model_validate_json(CORE.read_model(xml).get_rt_info(["ovedge", "meta"]).astype(str)),
            files=files,
            golden=sample,
        )
        if sign_with is not None:
            manifest = manifest.model_copy(update={"signature": sign_manifest(manifest, sign_with)})
        (staged / MANIFEST).write_text(manifest.model_dump_json(), encoding="utf-8")
        if tamper is not None:
            tamper(staged)
        store.publish(NAME, staged, number)
    return number


def loader_for(store: ModelStore, *, trusted_keys: tuple[Path, ...] = ()) -> ModelLoader:
    """The daemon's own loader for ``store``: one camera with default rules, CPU, no compile cache."""
    model = {"store": store.root, "name": NAME, "device": "CPU", "hint": "throughput", "num_requests": 2,
             "cache": False, "trusted_keys": list(trusted_keys)}
    folder = store.root.parent / f"config-{len(trusted_keys)}"
    folder.mkdir(exist_ok=True)
    return ModelLoader(load_config(write_config(folder, model=model)), CORE)


def _wait(predicate: Callable[[], bool], what: str) -> None:
    """Wait for a background thread's effect (a hang guard, not a timing assertion)."""
    deadline = time.monotonic() + 60
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _frame(index: int) -> Frame:
    return Frame(IMAGE, index, time.time(), time.monotonic())


def _top(item: InferenceDone) -> str:
    assert item.outputs is not None, item.error
    return item.model.loaded.postprocess(item.outputs, IMAGE.shape[:2])[0].label


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    s = ModelStore(tmp_path / "ir_models")
    publish(s, SCRATCH)
    return s


def _engine(store: ModelStore) -> Engine:
    return Engine(loader_for(store).load(1))


def test_self_test_passes_on_a_good_version(store: ModelStore) -> None:
    """The golden frame re-run on the compiled model matches the recorded outputs."""
    loader = loader_for(store)
    worst = self_test(loader.compile(store.resolve(NAME, 1)))
    assert 0.0 <= worst <= 0.05
    active = loader.load(1)
    assert isinstance(active, ActiveModel)
    assert 0.0 <= active.golden_diff <= 0.05
    assert set(active.deciders) == {"cam0"}


def test_the_first_model_is_self_tested_too(tmp_path: Path) -> None:
    """The loader the daemon starts with refuses a first version whose golden sample does not reproduce."""
    store = ModelStore(tmp_path / "ir_models")
    publish(store, SCRATCH, golden_shift=1.0)
    with pytest.raises(ModelError, match="widget v1: self-test failed: output 0 differs from the golden sample"):
        loader_for(store).load("latest")


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        (
            {"golden_shift": 1.0},
            "widget v2: self-test failed: output 0 differs from the golden sample by 1 (allowed 0.05)",
        ),
        ({"golden": False}, "widget v2 has no golden sample in its manifest; convert it again with ovedge-convert"),
    ],
    ids=["golden-differs", "no-golden"],
)
def test_failed_self_test_is_rejected_and_old_model_stays(store: ModelStore, kwargs: dict, reason: str) -> None:
    """A version whose golden sample does not reproduce (or is missing) never takes over."""
    publish(store, DENT, **kwargs)
    engine = _engine(store)
    outcome = ModelSwapper(engine=engine, loader=loader_for(store)).swap_to(2)
    assert (outcome.accepted, outcome.reason) == (False, reason)
    assert engine.model.version.version == 1


def test_corrupt_files_rejected_with_reason(store: ModelStore) -> None:
    """model.bin changed after the manifest was written: refused by the hash check, reason kept."""

    def corrupt(folder: Path) -> None:
        with (folder / "model.bin").open("r+b") as fh:
            fh.write(b"\xff\xff\xff\xff")

    publish(store, DENT, tamper=corrupt)
    engine = _engine(store)
    swapper = ModelSwapper(engine=engine, loader=loader_for(store))
    outcome = swapper.swap_to(2)
    assert not outcome.accepted
    assert outcome.reason is not None
    assert "model.bin: SHA-256" in outcome.reason
    assert "does not match manifest.json" in outcome.reason
    assert swapper.status()["rejected"] == {"2": outcome.reason}
    assert engine.model.version.version == 1


def test_unreadable_ir_with_matching_hashes_rejected(store: ModelStore) -> None:
    """An IR OpenVINO cannot read (hashes made after the damage) fails to load and is rejected."""

    def garble(folder: Path) -> None:
        (folder / "model.xml").write_text("<net>not an IR", encoding="utf-8")
        manifest = Manifest.model_validate_json((folder / MANIFEST).read_text(encoding="utf-8"))
        files = {**manifest.files, "model.xml": digest_file(folder / "model.xml")}
        (folder / MANIFEST).write_text(manifest.model_copy(update={"files": files}).model_dump_json(), encoding="utf-8")

    publish(store, DENT, tamper=garble)
    outcome = ModelSwapper(engine=_engine(store), loader=loader_for(store)).swap_to(2)
    assert outcome.reason is not None
    assert outcome.reason.startswith(f"{store.root / NAME / '2' / 'model.xml'} cannot be read by OpenVINO")


def test_trusted_keys_refuse_unsigned_accept_signed(store: ModelStore, tmp_path: Path) -> None:
    """With trusted_keys, an unsigned version is refused; a signed one takes over."""
    private, public = generate_keypair(tmp_path / "keys")
    publish(store, DENT)  # v2 unsigned
    publish(store, DENT, sign_with=private)  # v3 signed
    engine = _engine(store)
    swapper = ModelSwapper(engine=engine, loader=loader_for(store, trusted_keys=(public,)))
    refused = swapper.swap_to(2)
    assert refused.reason is not None
    assert refused.reason.startswith("model widget v2 is unsigned, and trusted_keys are configured")
    assert swapper.swap_to(3).accepted
    assert engine.model.version.version == 3
    assert swapper.status()["swaps"] == 1
    assert swapper.status()["rejections"] == 1


def test_signature_is_checked_before_the_hashes(store: ModelStore, tmp_path: Path) -> None:
    """One order of verification for start-up and swaps: an unsigned version whose files are also
    corrupt is refused for its signature (the manifest is authenticated before it judges the files);
    without trusted keys the same version is refused for its hashes."""
    _, public = generate_keypair(tmp_path / "keys")

    def corrupt(folder: Path) -> None:
        with (folder / "model.bin").open("r+b") as fh:
            fh.write(b"\xff\xff\xff\xff")

    publish(store, DENT, tamper=corrupt)
    with pytest.raises(ModelError, match=r"^model widget v2 is unsigned, and trusted_keys are configured"):
        loader_for(store, trusted_keys=(public,)).load(2)
    with pytest.raises(ModelError, match=r"model\.bin: SHA-256"):
        loader_for(store).load(2)


def test_polling_skips_rejected_request_retries(store: ModelStore) -> None:
    """A rejected version is not retried by polling; an explicit request retries it."""
    publish(store, DENT, golden_shift=1.0)
    engine = _engine(store)
    with ModelSwapper(engine=engine, loader=loader_for(store), poll_interval=0.01) as swapper:
        _wait(lambda: swapper.rejections == 1, "the first rejection")
        for _ in range(20):
            swapper.poll_now()
            time.sleep(0.01)
        assert swapper.rejections == 1
        swapper.request(2)
        _wait(lambda: swapper.rejections == 2, "the retried rejection")
    assert [o.trigger for o in swapper.history] == ["poll", "request"]
    assert engine.model.version.version == 1


def test_sighup_loads_latest(store: ModelStore) -> None:
    """SIGHUP makes the swapper take the newest version (watching off, so only the signal can)."""
    publish(store, DENT)
    engine = _engine(store)
    with ModelSwapper(engine=engine, loader=loader_for(store), watch=False, poll_interval=0.01) as swapper:
        restore = install_sighup(swapper)
        try:
            os.kill(os.getpid(), signal.SIGHUP)
            _wait(lambda: swapper.swaps == 1, "the swap after SIGHUP")
        finally:
            restore()
    assert engine.model.version.version == 2
    assert swapper.history[-1].trigger == "SIGHUP"


def test_swap_under_load_no_frame_lost_or_doubled(store: ModelStore) -> None:
    """Frames keep flowing while v2 is polled in and a bad v3 is refused: results = frames in,
    each frame once, the version switches exactly once, and inference never stops."""
    engine = _engine(store)
    results: list[InferenceDone] = []
    stop = threading.Event()
    submitted = 0
    marks: dict[str, int] = {}

    def produce() -> None:
        nonlocal submitted
        while not stop.is_set():
            assert engine.submit(_frame(submitted), submitted)
            submitted += 1

    def consume() -> None:
        while not (produced.is_set() and len(results) == submitted):
            item = engine.take(timeout=0.05)
            if item is not None:
                results.append(item)

    produced = threading.Event()
    producer, consumer = threading.Thread(target=produce), threading.Thread(target=consume)
    with ModelSwapper(engine=engine, loader=loader_for(store), poll_interval=0.02) as swapper:
        producer.start()
        consumer.start()
        _wait(lambda: len(results) >= 30, "30 results on v1")
        publish(store, DENT)  # v2 appears in the store
        _wait(lambda: swapper.swaps == 1, "the swap to v2")
        marks["swapped"] = submitted
        publish(store, SCRATCH, golden_shift=1.0)  # v3: its self-test fails
        _wait(lambda: swapper.rejections == 1, "the rejection of v3")
        marks["rejected"] = submitted
        _wait(lambda: submitted >= marks["rejected"] + 30, "30 more frames after the rejection")
        stop.set()
        producer.join()
        produced.set()
        consumer.join()
        engine.drain()
    assert len(results) == submitted
    by_index = sorted(results, key=lambda r: r.frame.index)
    assert [r.frame.index for r in by_index] == list(range(submitted))
    assert all(r.error is None for r in results)
    versions = [r.model.version.version for r in by_index]
    switch = versions.index(2)
    assert versions == [1] * switch + [2] * (submitted - switch)  # exactly one switch, never v3
    assert 30 <= switch <= marks["swapped"]
    assert {_top(r) for r in by_index[:switch]} == {"scratch"}
    assert {_top(r) for r in by_index[switch:]} == {"dent"}
    assert submitted >= marks["rejected"] + 30  # inference went on after the rejection
    status = swapper.status()
    assert (status["swaps"], status["rejections"]) == (1, 1)
    assert status["last"]["version"] == 3
    assert status["last"]["reason"].startswith("widget v3: self-test failed: output 0 differs")


def test_swap_to_a_model_wanting_more_requests_grows_the_window(store: ModelStore) -> None:
    """Swapping from 2 to 5 infer requests gives 5 + 2 credits: 7 frames start without a take, the 8th waits."""
    publish(store, DENT)
    engine = _engine(store)  # 2 requests + 2 spare credits
    v2 = loader_for(store).load(2)
    bigger = dataclasses.replace(v2, loaded=dataclasses.replace(v2.loaded, num_requests=5))
    assert engine.swap(bigger).version.version == 1
    assert all(engine.submit(_frame(i), i, timeout=0) for i in range(7))
    assert not engine.submit(_frame(7), 7, timeout=0)
    done = [engine.take(timeout=30) for _ in range(7)]
    assert sorted(d.frame.index for d in done if d is not None) == list(range(7))
    assert {_top(d) for d in done if d is not None} == {"dent"}


# -- inside the running daemon --


def _daemon_config(folder: Path, store: Path, port: int, state: Path) -> Path:
    return write_config(
        folder,
        station={"name": "st", "topic_prefix": "ovt"},
        model={"store": store, "name": NAME, "cache_dir": state / "cache"},
        cameras=[{
            "id": "cam0",
            "mode": "every-frame",
            "source": {"type": "synthetic", "seed": 1, "width": 64, "height": 48, "fps": 40, "count": 0},
        }],
        mqtt={"port": port},
        state={"dir": state},
    )


def test_daemon_swaps_under_load_and_rejects_a_bad_model(broker, tmp_path: Path, repo_root: Path) -> None:
    """ovedged on a real broker: v2 is polled in, v3 (bad self-test) is refused while v2 runs, v4 comes on
    SIGHUP; every frame is published exactly once, versions switch in order, no ERROR, reasons logged."""
    from tools.subscriber import Subscriber

    store = ModelStore(tmp_path / "store")
    publish(store, SCRATCH)
    cfg = _daemon_config(tmp_path, store.root, broker.port, tmp_path / "state")
    results: list[dict] = []
    log_path = tmp_path / "daemon.log"
    with log_path.open("w", encoding="utf-8") as log_file, Subscriber(broker.port, ["ovt/st/#"]) as sub:

        def collect() -> None:
            results.extend(json.loads(p) for t, p, _ in sub.drain() if t.endswith("/result"))

        def until(pred: Callable[[], bool], what: str) -> None:
            _wait(lambda: (collect(), pred())[1], what)

        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon.cli", "run", "--config", str(cfg)],
            cwd=repo_root,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            text=True,
        )
        try:
            until(lambda: len(results) >= 20, "20 results on v1")
            publish(store, DENT)  # v2: found by polling
            until(lambda: any(r["model"]["version"] == 2 for r in results), "results of v2")
            publish(store, SCRATCH, golden_shift=1.0)  # v3: refused
            until(lambda: "widget v2 keeps running" in log_path.read_text(encoding="utf-8"), "v3 refused")
            n = len(results)
            until(lambda: len(results) >= n + 20, "20 more results after the refusal")
            publish(store, SCRATCH)  # v4: asked for by SIGHUP
            proc.send_signal(signal.SIGHUP)
            until(lambda: any(r["model"]["version"] == 4 for r in results), "results of v4")
            n = len(results)
            until(lambda: len(results) >= n + 10, "10 more results on v4")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        time.sleep(0.5)
        collect()
    err = log_path.read_text(encoding="utf-8")
    assert proc.returncode == 0, err
    assert sorted(r["frame"]["index"] for r in results) == list(range(len(results)))  # each frame once
    ordered = sorted(results, key=lambda r: r["frame"]["index"])
    assert [v for v, _ in itertools.groupby(r["model"]["version"] for r in ordered)] == [1, 2, 4]
    assert all(r["verdict"] != "ERROR" for r in results)
    assert "model swap to widget v3 rejected (poll): widget v3: self-test failed: output 0 differs" in err
    assert "widget v2 keeps running" in err
    assert "model swap: widget v2 -> widget v4 (" in err
