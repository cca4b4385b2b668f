"""MQTT v5 commands and NG evidence against a real ``ovedged`` (demo model), a real Mosquitto and
a real model store holding two versions: request/response with correlation data, every verb."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.configs import write_config
from tests.waiting import wait_until
from tools.mosquitto import Mosquitto, find_mosquitto
from tools.request import Requester
from tools.subscriber import Subscriber

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STATION = "station1"


class Running:
    """``ovedged run`` as a child process with its log in a file."""

    def __init__(self, work: Path, store: Path, port: int) -> None:
        self.work = work
        self.state = work / "state"
        self.log = work / "daemon.log"
        self.sections: dict[str, Any] = {
            "station": {"name": STATION},
            "model": {"store": store, "name": "demo", "version": 1, "cache_dir": work / "cache"},
            "cameras": [{"id": "cam0", "mode": "every-frame",
                         "source": {"type": "synthetic", "seed": 5, "fps": 20, "defect_rate": 0.5}}],
            "rules": {"min_score": 0.5},
            "mqtt": {"port": port, "keepalive": 15, "connect_timeout": 5},
            "state": {"dir": self.state},
            "spool": {"replay_delay": 0, "drain_timeout": 5},
            "commands": {"enabled": True, "inspect_timeout": 30},
            "evidence": {"enabled": True, "publish": ["cam0"]},
        }
        self.config = write_config(work, **self.sections)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen([str(BIN / "ovedged"), "run", "--config", str(self.config)], cwd=ROOT,
                                         stdout=fh, stderr=fh, env=env, start_new_session=True)
        assert wait_until(lambda: "running:" in self.text() or self.proc is None or self.proc.poll() is not None, 180)
        assert "running:" in self.text(), self.text()[-3000:]

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(120)
        self.proc = None
        return code

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture(scope="module")
def two_versions(demo_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo store with version 2: a copy of version 1 (same files, manifest saying 2)."""
    store = tmp_path_factory.mktemp("store2")
    shutil.copytree(demo_store / "demo" / "1", store / "demo" / "1")
    shutil.copytree(demo_store / "demo" / "1", store / "demo" / "2")
    manifest = json.loads((store / "demo" / "2" / "manifest.json").read_text(encoding="utf-8"))
    manifest["version"] = 2
    (store / "demo" / "2" / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return store


@pytest.fixture(scope="module")
def line(two_versions: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, Mosquitto]]:
    """One broker and one daemon for the module (starting a daemon compiles the model: done once)."""
    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed: apt-get install -y mosquitto (.ci/run does this)")
    work = tmp_path_factory.mktemp("line")
    with Mosquitto() as broker:
        daemon = Running(work, two_versions, broker.port)
        try:
            daemon.start()
            yield daemon, broker
        finally:
            daemon.kill()


def test_status_answers_on_the_response_topic_with_the_correlation_data(line: tuple[Running, Mosquitto]) -> None:
    """cmd/status is answered once, on the request's response topic, carrying its correlation data, with the
    status body (model, spool, evidence); the log names the response topic and the declared client id."""
    daemon, broker = line
    with Requester(broker.port, station=STATION, client_id="op-1") as req:
        answer = req.ask("status")
    assert answer["schema"] == "ovedge.response/1" and answer["verb"] == "status" and answer["ok"] is True
    status = answer["status"]
    assert status["model"]["name"] == "demo" and "spool" in status and "evidence" in status
    assert "command status from client_id 'op-1' (declared), response topic 'ovedge/station1/reply/op-1'" \
        in daemon.text()


def test_the_documented_requester_command_gets_an_answer(line: tuple[Running, Mosquitto]) -> None:
    """`python -m tools.request --port P --station station1 replay '{"since": 0, "limit": 1}'` (docs/MQTT.md)
    prints the daemon's JSON answer and exits 0."""
    _daemon, broker = line
    done = subprocess.run([sys.executable, "-m", "tools.request", "--port", str(broker.port), "--station", STATION,
                           "replay", '{"since": 0, "limit": 1}'], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["verb"] == "replay" and answer["ok"] is True and answer["count"] == 1


def test_inspect_answers_with_the_next_result_tagged_with_the_part_id(line: tuple[Running, Mosquitto]) -> None:
    """cmd/inspect {"part_id"} answers with the camera's next result, whose frame.ref is the part id; the same
    result (same seq) is published on the result topic."""
    _daemon, broker = line
    with Subscriber(broker.port, [f"ovedge/{STATION}/cam0/result"]) as sub, \
            Requester(broker.port, station=STATION) as req:
        answer = req.ask("inspect", {"part_id": "A-1234"})
        assert answer["ok"] is True, answer
        result = answer["result"]
        assert result["frame"]["ref"] == "A-1234" and result["camera"] == "cam0"
        seq = result["seq"]
        got: list[dict[str, Any]] = []

        def seen() -> bool:
            got.extend(json.loads(p) for _, p, _ in sub.drain())
            return any(r["seq"] == seq for r in got)

        assert wait_until(seen)
    assert next(r for r in got if r["seq"] == seq)["frame"]["ref"] == "A-1234"


def test_replay_republishes_stored_results_and_says_the_range(line: tuple[Running, Mosquitto]) -> None:
    """cmd/replay {"since": S, "limit": N} re-publishes the N stored results above S on their result topic
    and answers with count, first, last and more."""
    _daemon, broker = line
    with Requester(broker.port, station=STATION) as req:
        assert wait_until(lambda: req.ask("replay", {"since": 7, "limit": 1})["count"] == 1)  # seq 8 is stored
        with Subscriber(broker.port, [f"ovedge/{STATION}/cam0/result"]) as sub:
            answer = req.ask("replay", {"since": 2, "limit": 5})
            assert answer["ok"] is True, answer
            assert (answer["count"], answer["first"], answer["last"], answer["more"]) == (5, 3, 7, True)
            wanted = {3, 4, 5, 6, 7}
            got: set[int] = set()

            def seen() -> bool:
                got.update(json.loads(p)["seq"] for _, p, _ in sub.drain())
                return wanted <= got

            assert wait_until(seen)


@pytest.mark.parametrize(("verb", "body", "needle"), [
    ("launch", {}, "unknown command 'launch'"),
    ("replay", b"{not json", "not JSON"),
    ("replay", {"since": -1}, "since"),
    ("replay", {"since": 1, "path": "/etc"}, "unknown key path"),
    ("inspect", {"camera": "cam9"}, "unknown camera 'cam9'"),
    ("model", {"version": 7}, "demo v7 is not in the model store; present: 1, 2"),
    ("model", {"version": "../../etc/passwd"}, "version"),
    ("model", {"name": "other", "version": 1}, "'other' is not the running model"),
])
def test_invalid_commands_are_refused_with_one_line(line: tuple[Running, Mosquitto], verb: str,
                                                    body: dict[str, Any] | bytes, needle: str) -> None:
    """A command that fails validation is answered ok=false with the reason and changes nothing."""
    daemon, broker = line
    with Requester(broker.port, station=STATION) as req:
        answer = req.ask(verb, body)
    assert answer["ok"] is False
    assert needle in answer["error"]
    assert "\n" not in answer["error"]
    assert daemon.alive()


def test_model_command_swaps_through_the_self_test(line: tuple[Running, Mosquitto]) -> None:
    """cmd/model {"version": 2} switches to version 2 of the store through the hot swap (golden self-test);
    the answer comes after the swap, and later results carry version 2. Asking again: already running."""
    _daemon, broker = line
    with Requester(broker.port, station=STATION) as req:
        answer = req.ask("model", {"version": 2}, timeout=180)
        assert answer["ok"] is True, answer
        assert (answer["swapped"], answer["previous"], answer["version"]) == (True, 1, 2)
        assert req.ask("status")["status"]["model"]["version"] == 2
        again = req.ask("model", {"version": 2}, timeout=60)
        assert again["ok"] is True and again["swapped"] is False
    with Subscriber(broker.port, [f"ovedge/{STATION}/cam0/result"]) as sub:
        assert wait_until(lambda: any(json.loads(p)["model"]["version"] == 2 for _, p, _ in sub.drain()))


def test_reload_refuses_a_bad_file_and_applies_rules_not_mqtt(line: tuple[Running, Mosquitto]) -> None:
    """cmd/reload with an invalid file, or rules naming a label the running model does not have, answers
    ok=false with the problems and the daemon keeps running; with a valid file it applies [rules] and names
    [mqtt] as needing a restart (not applied)."""
    daemon, broker = line
    good = daemon.config.read_text(encoding="utf-8")
    with Requester(broker.port, station=STATION) as req:
        daemon.config.write_text(good.replace("min_score = 0.5", 'min_score = "high"'), encoding="utf-8")
        refused = req.ask("reload")
        assert refused["ok"] is False and any("rules.min_score" in p for p in refused["problems"])
        assert daemon.alive()
        daemon.config.write_text(good.replace("min_score = 0.5", "min_score = 0.5\nignore_labels = [\"dent\"]"),
                                 encoding="utf-8")
        unfit = req.ask("reload")
        assert unfit["ok"] is False and "labels the model does not have: ['dent']" in unfit["error"], unfit
        assert daemon.alive()
        changed = good.replace("min_score = 0.5", "min_score = 0.6").replace("keepalive = 15", "keepalive = 20")
        assert changed != good
        daemon.config.write_text(changed, encoding="utf-8")
        answer = req.ask("reload")
        daemon.config.write_text(good, encoding="utf-8")
    assert answer["ok"] is True, answer
    assert answer["applied"] == ["rules"] and answer["restart_needed"] == ["mqtt"]
    assert "config reloaded" in daemon.text()


def test_ng_results_name_an_evidence_image_that_is_written_and_published(line: tuple[Running, Mosquitto]) -> None:
    """An NG result's evidence field names a JPEG under the state folder, and (publish = ["cam0"]) the same
    image arrives on <prefix>/<station>/cam0/evidence with the file name as a user property."""
    daemon, broker = line
    images: queue.Queue[tuple[str, bytes]] = queue.Queue()
    with Subscriber(broker.port, [f"ovedge/{STATION}/cam0/result", f"ovedge/{STATION}/cam0/evidence"]) as sub:
        ng: list[dict[str, Any]] = []

        def collect() -> bool:
            for topic, payload, _ in sub.drain():
                if topic.endswith("/result"):
                    r = json.loads(payload)
                    if r["verdict"] == "NG":
                        ng.append(r)
                else:
                    images.put((topic, payload))
            return bool(ng) and images.qsize() > 0

        assert wait_until(collect)
        props = [p for t, p in list(sub.properties.queue) if t.endswith("/evidence")]
    name = ng[0]["evidence"]
    assert name is not None and name.startswith("evidence/cam0/")
    assert wait_until((daemon.state / name).is_file)
    assert (daemon.state / name).read_bytes()[:2] == b"\xff\xd8"  # JPEG
    _, jpeg = images.get_nowait()
    assert jpeg[:2] == b"\xff\xd8"
    assert props and props[0].ContentType == "image/jpeg"
    assert dict(props[0].UserProperty)["evidence"].startswith("evidence/cam0/")


def test_zz_clean_stop_after_commands(line: tuple[Running, Mosquitto]) -> None:
    """After every command above the daemon stops cleanly on SIGTERM (exit 0)."""
    daemon, _broker = line
    assert daemon.stop() == 0
