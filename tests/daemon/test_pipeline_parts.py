"""The daemon's pipeline parts with real objects: slots, the engine, imports."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import openvino as ov
import pytest

from camera.frame import Frame
from daemon.config import ModelConfig
from daemon.engine import ActiveModel, Engine, LoadedModel
from daemon.slots import FrameHub
from ovedge.errors import ConfigError, StateError
from ovedge.store import ModelStore


def _frame(i: int, shape: tuple[int, ...] = (64, 64, 3)) -> Frame:
    return Frame(image=np.full(shape, i % 255, np.uint8), index=i, timestamp=time.time(), monotonic=time.monotonic())


def test_free_run_slot_keeps_latest_and_counts_drops() -> None:
    """In free-run mode an untaken frame is replaced by the next one and counted as dropped."""
    hub: FrameHub[str] = FrameHub()
    hub.add("a", latest_wins=True)
    stop = threading.Event()
    for i in range(5):
        assert hub.put("a", _frame(i), stop)
    got = hub.get(timeout=0.1)
    assert got is not None
    assert got[1].index == 4
    assert hub.dropped() == {"a": 4}
    assert hub.get(timeout=0.01) is None


def test_every_frame_slot_blocks_the_camera_and_skips_nothing() -> None:
    """In every-frame mode the camera waits for the dispatcher: all frames arrive, in order."""
    hub: FrameHub[str] = FrameHub()
    hub.add("a", latest_wins=False)
    stop = threading.Event()

    def camera() -> None:
        for i in range(50):
            hub.put("a", _frame(i), stop)
        hub.close_source("a")

    t = threading.Thread(target=camera)
    t.start()
    seen = []
    while t.is_alive() or not hub.is_empty():
        got = hub.get(timeout=0.05)
        if got is not None:
            seen.append(got[1].index)
    t.join()
    assert seen == list(range(50))
    assert hub.dropped() == {"a": 0}


def test_round_robin_across_cameras() -> None:
    """A camera that always has a frame waiting cannot starve another one."""
    hub: FrameHub[str] = FrameHub()
    hub.add("a", latest_wins=True)
    hub.add("b", latest_wins=True)
    stop = threading.Event()
    hub.put("a", _frame(0), stop)
    hub.put("b", _frame(0), stop)
    first = hub.get(0.1)
    assert first is not None
    hub.put(first[0], _frame(1), stop)  # the camera just served is ready again at once
    second = hub.get(0.1)
    assert second is not None
    assert second[0] != first[0]


def test_unusable_or_corrupt_state_is_a_state_error(tmp_path: Path) -> None:
    """A state folder that cannot hold the spool, or a corrupt high-water mark, is a StateError naming the
    path and the fix (a fault of the machine at run time, not of the config file)."""
    from daemon.config import SpoolConfig
    from daemon.spool import Spool, check_state_dir

    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="ascii")
    with pytest.raises(StateError) as err:
        check_state_dir(blocker / "state", SpoolConfig())
    assert not isinstance(err.value, ConfigError)
    assert err.value.path == blocker / "state" and "[state] dir" in err.value.fix
    (tmp_path / "seq").write_text("twelve", encoding="ascii")
    with pytest.raises(StateError) as err, Spool(tmp_path, SpoolConfig()):
        pass
    assert not isinstance(err.value, ConfigError)
    assert err.value.path == tmp_path / "seq"


def test_engine_turns_a_bad_frame_into_an_error_not_a_silent_drop(demo_store: Path, tmp_path: Path) -> None:
    """A frame the IR cannot take (2-D image) comes out as a failed result; good frames still infer."""
    version = ModelStore(demo_store).resolve("demo")
    model = LoadedModel.load(ov.Core(), version, ModelConfig(), cache_dir=None)
    engine = Engine(ActiveModel(model, {}, golden_diff=0.0))  # no cameras, no rules: only the engine
    assert engine.submit(_frame(0), "cam", timeout=5)
    assert engine.submit(_frame(1, (32, 32)), "cam", timeout=5)
    assert engine.submit(_frame(2, (480, 640, 3)), "cam", timeout=5)
    engine.drain()
    done = {}
    while (item := engine.take(timeout=1)) is not None:
        done[item.frame.index] = item
    assert sorted(done) == [0, 1, 2]
    assert done[1].outputs is None
    assert done[1].error
    for i in (0, 2):
        assert done[i].error is None
        assert done[i].outputs is not None
        assert done[i].outputs[0].shape == (1, 4)
        assert done[i].latency_ms > 0


def test_daemon_never_imports_torch(repo_root: Path) -> None:
    """Importing the whole daemon (and the camera package) loads neither torch nor onnx."""
    code = ("import sys, daemon.app, daemon.cli, camera, ovedge.irmeta, ovedge.store; "
            "bad = [m for m in ('torch', 'onnx', 'nncf') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo_root, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_package_face_lists_what_it_exports_without_loading_openvino(repo_root: Path) -> None:
    """`import daemon` is light (no OpenVINO, OpenCV or paho until a name is used); every name in
    `daemon.__all__` resolves to a class or function of a daemon module (never a submodule shadowing it),
    also after every submodule has been imported."""
    code = (
        "import sys, daemon; heavy = [m for m in ('openvino', 'cv2', 'paho') if m in sys.modules]; "
        "assert not heavy, heavy; import daemon.app, daemon.cli, daemon.preflight, daemon.swap; "
        "wrong = [n for n in daemon.__all__ if getattr(getattr(daemon, n), '__module__', '').partition('.')[0] "
        "!= 'daemon']; assert not wrong, wrong; print(len(daemon.__all__))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo_root, check=False)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 20


def test_failed_inference_becomes_an_error_result_never_ok(demo_store: Path, tmp_path: Path) -> None:
    """A failed request, or outputs the post-processor cannot read, give verdict ERROR with the reason."""
    from daemon.app import Daemon
    from daemon.config import load_config
    from daemon.engine import InferenceDone
    from daemon.preflight import ModelLoader
    from daemon.result import Verdict
    from tests.configs import write_config

    cfg = load_config(write_config(tmp_path, model={"store": demo_store, "cache": False}))
    active = ModelLoader(cfg, ov.Core()).load("latest")  # carries the rules the result is judged by
    daemon = Daemon(cfg)
    failed = InferenceDone(_frame(3), "cam0", active, None, 0.0, "device lost")
    record = daemon.judge(failed)
    assert record.verdict is Verdict.ERROR
    assert record.error == "device lost"
    assert record.defects == ()
    garbled = InferenceDone(_frame(4), "cam0", active, [np.zeros((1, 7), np.float32)], 1.0)
    record = daemon.judge(garbled)
    assert record.verdict is Verdict.ERROR
    assert record.error is not None
    assert record.error.startswith("post-processing failed")


def test_take_batch_returns_every_finished_frame_once_and_frees_their_credits(demo_store: Path) -> None:
    """Frames finished while nobody took them come out together, oldest first, each once with its own
    outputs; ``limit`` caps a batch; the batch's credits come back, so as many frames start again
    without waiting; an empty engine gives ``[]`` after the timeout."""
    version = ModelStore(demo_store).resolve("demo")
    model = LoadedModel.load(ov.Core(), version, ModelConfig(), cache_dir=None)
    engine = Engine(ActiveModel(model, {}, golden_diff=0.0), extra_capacity=2)  # only the engine
    capacity = model.num_requests + 2
    frames = [_frame(i, (64 + 8 * i, 64, 3)) for i in range(capacity)]  # mixed sizes: batches need not share one
    assert all(engine.submit(f, f"cam{f.index}", timeout=5) for f in frames)
    assert not engine.submit(_frame(99), "cam99", timeout=0)  # every credit is taken
    engine.drain()
    first = engine.take_batch(timeout=5, limit=2)
    rest = engine.take_batch(timeout=5)
    assert len(first) == 2
    got = first + rest
    assert sorted(item.frame.index for item in got) == list(range(capacity))
    for item in got:
        assert item.context == f"cam{item.frame.index}"
        assert item.error is None
        assert item.outputs is not None
        assert item.outputs[0].shape == (1, 4)
    solo = ov.Core().compile_model(version.xml, "CPU")
    for item in got:  # each result holds its own frame's outputs, not a neighbour's
        assert item.outputs is not None
        np.testing.assert_allclose(item.outputs[0], solo(item.frame.image[np.newaxis])[0], atol=1e-4)
    assert all(engine.submit(_frame(i), "again", timeout=0) for i in range(capacity))  # credits came back
    engine.drain()
    assert len(engine.take_batch(timeout=5)) == capacity
    assert engine.take_batch(timeout=0.05) == []


def test_a_failed_frame_in_a_batch_is_an_error_for_that_frame_only(demo_store: Path) -> None:
    """A frame the IR cannot take, submitted between good ones, comes out of the same batch as the
    only failed item; its neighbours infer normally."""
    version = ModelStore(demo_store).resolve("demo")
    model = LoadedModel.load(ov.Core(), version, ModelConfig(), cache_dir=None)
    engine = Engine(ActiveModel(model, {}, golden_diff=0.0))
    for i in range(3):
        shape = (32, 32) if i == 1 else (64, 64, 3)
        assert engine.submit(_frame(i, shape), "cam", timeout=5)
    engine.drain()
    batch = engine.take_batch(timeout=5)
    while len(batch) < 3:
        more = engine.take_batch(timeout=5)
        assert more, "a frame never came out"
        batch += more
    by_index = {item.frame.index: item for item in batch}
    assert sorted(by_index) == [0, 1, 2]
    assert by_index[1].outputs is None
    assert by_index[1].error
    assert by_index[0].error is None
    assert by_index[2].error is None


def test_a_bug_while_judging_still_gives_the_frame_one_error_result(demo_store: Path, tmp_path: Path) -> None:
    """Outputs that make the post-processor fail in an unexpected way (a TypeError, i.e. a bug) do not
    lose the frame: it gets one ERROR result saying an internal error happened."""
    from daemon.app import Daemon
    from daemon.config import load_config
    from daemon.engine import InferenceDone
    from daemon.preflight import ModelLoader
    from daemon.result import Verdict
    from tests.configs import write_config

    cfg = load_config(write_config(tmp_path, model={"store": demo_store, "cache": False}))
    active = ModelLoader(cfg, ov.Core()).load("latest")
    daemon = Daemon(cfg)
    broken = InferenceDone(_frame(5), "cam0", active, [object()], 1.0)  # type: ignore[list-item]
    result = daemon.judge(broken)
    assert result.verdict is Verdict.ERROR
    assert result.frame_index == 5
    assert result.error is not None
    assert "internal error" in result.error


def _until_static(engine: Engine, shape: tuple[int, ...], frames: list[Frame]) -> None:
    """Submit ``frames`` round and round until ``shape`` runs on a static copy (liveness bound, not speed)."""
    deadline = time.monotonic() + 120
    i = 0
    while shape not in engine.static_shapes:
        assert time.monotonic() < deadline, f"no static copy for {shape}: {engine.static_shapes}"
        assert engine.submit(frames[i % len(frames)], "cam", timeout=5)
        engine.take_batch(timeout=0.05)
        i += 1


def test_engine_runs_each_frame_size_on_a_static_copy_checked_against_the_dynamic_model(
    demo_store: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With ``static_shapes`` the first frame of each size has a static-shape copy compiled in the
    background; once it is there frames of that size run on it with the dynamic model's outputs
    (within the golden tolerance), and checking the copy wrote into no camera frame. A size the IR
    cannot take (a 2-D frame) gets a warning and its frames still come out as ERROR results; a
    reload (same compiled model, new rules) keeps the copies. ``on_static`` is called once per copy
    that serves (the daemon republishes its retained status then)."""
    import dataclasses

    version = ModelStore(demo_store).resolve("demo")
    # f32 execution: outputs are then exactly reproducible (the CPU's bf16 default differs by rounding).
    model = LoadedModel.load(ov.Core(), version, ModelConfig(inference_precision="f32"), cache_dir=None)
    announced: list[tuple[tuple[int, ...], ...]] = []  # what the engine serves when it says a copy is there
    engine = Engine(ActiveModel(model, {}, golden_diff=0.0), static_shapes=True,
                    on_static=lambda: announced.append(engine.static_shapes))
    assert engine.static_shapes == ()
    rng = np.random.default_rng(0)
    frames = [Frame(image=rng.integers(0, 256, (96, 80, 3), np.uint8), index=i, timestamp=time.time(),
                    monotonic=time.monotonic()) for i in range(4)]
    originals = [f.image.copy() for f in frames]
    with caplog.at_level("INFO", logger="daemon.engine"):
        _until_static(engine, (96, 80, 3), frames)
        assert "80x96x3 frames now run on a static-shape copy" in caplog.text
        engine.drain()
        engine.take_batch(timeout=0.1)
        for f in frames:
            assert engine.submit(f, "cam", timeout=5)
        engine.drain()
        done = sorted(engine.take_batch(timeout=1), key=lambda d: d.frame.index)
        assert [d.frame.index for d in done] == [0, 1, 2, 3]
        atol = version.manifest.golden.atol if version.manifest.golden else 1e-4
        # The check of the copy ran beside in-flight frames and wrote into none of them.
        assert all(np.array_equal(f.image, o) for f, o in zip(frames, originals, strict=True))
        for d in done:
            request = model.compiled.create_infer_request()
            # share_inputs: a copying infer() could write into a frame another request was given in place
            request.infer({0: d.frame.image[np.newaxis]}, share_inputs=True)
            assert d.outputs is not None
            assert np.abs(d.outputs[0] - request.get_output_tensor(0).data).max() <= atol

        flat = _frame(9, (32, 32))
        assert engine.submit(flat, "cam", timeout=5)
        deadline = time.monotonic() + 120
        while "no static-shape copy for 32x32 frames" not in caplog.text:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    engine.drain()
    bad = engine.take_batch(timeout=1)
    assert [d.frame.index for d in bad] == [9]
    assert bad[0].outputs is None and bad[0].error
    assert engine.static_shapes == ((96, 80, 3),)
    assert announced == [((96, 80, 3),)]  # once, after the copy served; not for the size that failed

    engine.swap(dataclasses.replace(engine.model, deciders={}))  # a reload: same compiled model, other rules
    assert engine.static_shapes == ((96, 80, 3),)


def test_engine_without_static_shapes_keeps_the_dynamic_model(demo_store: Path) -> None:
    """``model.static_shapes = false``: every frame runs on the dynamic model, no copy is made."""
    version = ModelStore(demo_store).resolve("demo")
    model = LoadedModel.load(ov.Core(), version, ModelConfig(static_shapes=False), cache_dir=None)
    engine = Engine(ActiveModel(model, {}, golden_diff=0.0), static_shapes=False)
    for i in range(20):
        assert engine.submit(_frame(i), "cam", timeout=5)
        engine.take_batch(timeout=0.01)
    engine.drain()
    for thread in threading.enumerate():
        assert thread.name != "static-shape"
    assert engine.static_shapes == ()
