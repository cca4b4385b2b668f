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
