"""The MQTT publisher against a real Mosquitto: status, Will, PUBACK reason codes, outages."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.config import DaemonConfig, load_config
from daemon.publisher import Publisher, RateMeter, probe_broker
from daemon.result import FrameOut, ModelOut, ResultRecord, TimingsOut, Verdict
from ovedge.errors import PublishError
from tests.configs import write_config
from tests.racing import interleave
from tests.waiting import wait_until
from tools.mosquitto import Mosquitto, free_port
from tools.subscriber import Subscriber


def _cfg(tmp_path: Path, port: int) -> DaemonConfig:
    path = write_config(tmp_path, station={"name": "s1"}, mqtt={"port": port, "connect_timeout": 5})
    return load_config(path)


def _record(seq: int) -> ResultRecord:
    return ResultRecord(
        seq=seq, station="s1", camera="cam0", time="2026-01-01T00:00:00.000000Z",
        frame=FrameOut(index=seq, ref=None, captured="2026-01-01T00:00:00.000000Z", width=8, height=8),
        model=ModelOut(name="m", version=1, device="CPU"), verdict=Verdict.OK, defects=(),
        timings=TimingsOut(inference_ms=1.0, capture_to_result_ms=2.0),
    )


def test_results_are_delivered_and_acknowledged(broker: Mosquitto, tmp_path: Path) -> None:
    """Each result reaches a subscriber once at QoS 1 and its PUBACK is counted as delivered."""
    cfg = _cfg(tmp_path, broker.port)
    with Subscriber(broker.port, ["ovedge/s1/#"]) as sub, Publisher(cfg, dict) as pub:
        for seq in range(1, 21):
            pub.publish_result(_record(seq))
        assert wait_until(lambda: pub.counters.delivered == 20)
        assert pub.outstanding() == 0
    got = [json.loads(p) for t, p, _ in sub.drain() if t == "ovedge/s1/cam0/result"]
    assert [m["seq"] for m in got] == list(range(1, 21))


def test_status_online_retained_then_stopped_on_clean_stop(broker: Mosquitto, tmp_path: Path) -> None:
    """The retained status says online while running and stopped/shutdown after a clean stop."""
    cfg = _cfg(tmp_path, broker.port)
    with Publisher(cfg, lambda: {"model": {"name": "m"}}), Subscriber(broker.port, ["ovedge/s1/status"]) as late:
        assert wait_until(lambda: not late.messages.empty())
        _topic, payload, retained = late.messages.get()
        assert retained
        assert json.loads(payload)["state"] == "online"
        assert json.loads(payload)["model"] == {"name": "m"}
    with Subscriber(broker.port, ["ovedge/s1/status"]) as after:
        assert wait_until(lambda: not after.messages.empty())
        body = json.loads(after.messages.get()[1])
        assert body["state"] == "stopped"
        assert body["reason"] == "shutdown"


_HOLD_PUBLISHER = """
import sys, time
from pathlib import Path
from daemon.config import load_config
from daemon.publisher import Publisher
with Publisher(load_config(Path(sys.argv[1])), dict):
    print("connected", flush=True)
    time.sleep(3600)
"""


def test_last_will_says_offline_when_the_connection_dies(broker: Mosquitto, tmp_path: Path, repo_root: Path) -> None:
    """When the daemon dies without a DISCONNECT (SIGKILL of a process holding a publisher), the broker
    publishes offline (Will), without a time."""
    config = write_config(tmp_path, station={"name": "s1"}, mqtt={"port": broker.port, "connect_timeout": 5})
    with Subscriber(broker.port, ["ovedge/s1/status"]) as sub:
        child = subprocess.Popen([sys.executable, "-c", _HOLD_PUBLISHER, str(config)], cwd=repo_root,
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "connected"
            assert wait_until(lambda: not sub.messages.empty())
            sub.drain()
        finally:
            child.kill()
            child.wait()
            if child.stdout is not None:
                child.stdout.close()
        assert wait_until(lambda: not sub.messages.empty())
        body = json.loads(sub.messages.get()[1])
    assert body["state"] == "offline"
    assert body["reason"] == "connection lost"
    assert "time" not in body, "the Will is published at the moment of death: a connect time would be stale"


def test_puback_not_authorised_is_not_a_delivery(tmp_path: Path) -> None:
    """A broker that refuses the topic (PUBACK 0x87) leaves the result counted as rejected, not delivered."""
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite ovedge/s1/status\n", encoding="utf-8")
    with Mosquitto(extra=f"acl_file {acl}") as b, Publisher(_cfg(tmp_path, b.port), dict) as pub:
        pub.publish_result(_record(1))
        assert wait_until(lambda: pub.counters.rejected == 1)
        assert pub.counters.delivered == 0


def test_results_published_during_an_outage_arrive_after_reconnect(tmp_path: Path) -> None:
    """Results published while the broker is down are held and delivered once it is back."""
    port = free_port()
    cfg = _cfg(tmp_path, port)
    first = Mosquitto(port)
    first.start()
    try:
        with Publisher(cfg, dict) as pub:
            first.stop()
            assert wait_until(lambda: not pub.connected)
            for seq in range(1, 6):
                pub.publish_result(_record(seq))
            first.start()  # same port, persistent store in the same folder
            with Subscriber(port, ["ovedge/s1/cam0/result"]) as sub:
                # the publisher reconnects within its 1-5 s back-off and resends
                assert wait_until(lambda: pub.counters.delivered + pub.counters.no_subscribers == 5, 30)
                got = [json.loads(p)["seq"] for _, p, _ in sub.drain()]
    finally:
        first.stop()
    assert pub.counters.delivered + pub.counters.no_subscribers == 5
    assert set(got) <= {1, 2, 3, 4, 5}


def test_unreachable_broker_is_a_publish_error(tmp_path: Path) -> None:
    """Nothing listening: PublishError naming host:port and the fix, for the daemon and for check-config."""
    port = free_port()
    cfg = _cfg(tmp_path, port)
    with pytest.raises(PublishError, match=f"127.0.0.1:{port} is unreachable"):
        Publisher(cfg, dict).__enter__()
    with pytest.raises(PublishError, match=f"127.0.0.1:{port} is unreachable"):
        probe_broker(cfg)


def test_bad_credentials_are_refused_with_the_reason(tmp_path: Path) -> None:
    """A broker that refuses anonymous clients fails start-up with the broker's reason."""
    with Mosquitto() as b:
        b.stop()
        conf = b.dir / "mosquitto.conf"
        b.config_text = lambda: Mosquitto.config_text(b).replace("allow_anonymous true", "allow_anonymous false")  # type: ignore[method-assign]
        b.start()
        assert "allow_anonymous false" in conf.read_text()
        with pytest.raises(PublishError, match="refused the connection: Not authorized"):
            Publisher(_cfg(tmp_path, b.port), dict).__enter__()


def test_a_batch_of_results_is_published_in_one_call_each_once(broker: Mosquitto, tmp_path: Path) -> None:
    """``publish_results`` (the decide thread's one call per batch) delivers every result of the batch
    once, in order, and counts each PUBACK."""
    cfg = _cfg(tmp_path, broker.port)
    with Subscriber(broker.port, ["ovedge/s1/cam0/result"]) as sub, Publisher(cfg, dict) as pub:
        pub.publish_results([_record(seq) for seq in range(1, 31)])
        pub.publish_results([])
        assert wait_until(lambda: pub.counters.delivered == 30)
        assert wait_until(lambda: sub.messages.qsize() >= 30)
        assert pub.counters.published == 30
        assert pub.outstanding() == 0
    got = [json.loads(p)["seq"] for _, p, _ in sub.drain()]
    assert got == list(range(1, 31))


def _no_subscriber_lines(caplog: pytest.LogCaptureFixture) -> tuple[list[str], list[str]]:
    """(WARNING lines, summary INFO lines) the publisher logged about PUBACK 0x10."""
    ours = [r for r in caplog.records if r.name == "daemon.publisher" and "PUBACK 0x10" in r.getMessage()]
    warnings = [r.getMessage() for r in ours if r.levelno == logging.WARNING]
    summaries = [r.getMessage() for r in ours if r.levelno == logging.INFO]
    return warnings, summaries


def test_no_subscriber_logs_one_warning_then_a_summary(
    broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With nobody subscribed, 50 results give ONE warning (the first), all 50 are counted, and the
    rest appear in one summary line at shutdown (the periodic summary is not yet due)."""
    caplog.set_level(logging.INFO, logger="daemon.publisher")
    cfg = _cfg(tmp_path, broker.port)
    with Publisher(cfg, dict, no_subscriber_log_every=3600) as pub:
        for seq in range(1, 51):
            pub.publish_result(_record(seq))
        assert wait_until(lambda: pub.counters.no_subscribers == 50)
        warnings, summaries = _no_subscriber_lines(caplog)
        assert len(warnings) == 1
        assert "result seq 1:" in warnings[0]
        assert summaries == []
    assert pub.counters.delivered == 0
    assert pub.counters.rejected == 0
    warnings, summaries = _no_subscriber_lines(caplog)
    assert len(warnings) == 1
    assert summaries == ["49 more results had no subscriber (PUBACK 0x10) since the last line; 50 since start"]


def test_no_subscriber_summary_is_periodic_and_only_when_the_count_moved(
    broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """When the summary is due it is logged while running; with no new 0x10 no further line comes."""
    caplog.set_level(logging.INFO, logger="daemon.publisher")
    cfg = _cfg(tmp_path, broker.port)
    with Publisher(cfg, dict, no_subscriber_log_every=0.0) as pub:
        for seq in range(1, 31):
            pub.publish_result(_record(seq))
        assert wait_until(lambda: any(s.endswith("30 since start") for s in _no_subscriber_lines(caplog)[1]))
        lines_then = len(caplog.records)
        time.sleep(0.5)  # several ack-loop turns with an unchanged count (not a timing assertion)
        assert len(caplog.records) == lines_then
    warnings, summaries = _no_subscriber_lines(caplog)
    assert len(warnings) == 1
    counted = sum(int(s.split()[0]) for s in summaries)
    assert counted == 29  # every 0x10 after the first is in exactly one summary
    assert pub.counters.no_subscribers == 30


def test_the_delivery_rate_is_counted_over_its_window() -> None:
    """50 deliveries just now read as 50 over the last 9-10 s (the window's whole seconds and this one)."""
    meter = RateMeter(window=10.0)
    assert meter.rate() == 0.0
    meter.add(20)
    meter.add(30)
    assert 50 / 10 <= meter.rate() <= 50 / 9


def test_the_delivery_rate_is_read_safely_while_pubacks_add_to_it() -> None:
    """The mqtt-acks thread adds while status builders in other threads read (a camera ending, GET
    /status, the periodic status): no reader may fail and no delivery may be missed. The threads
    interleave inside the meter's methods (tests/racing.py)."""
    meter = RateMeter(window=10.0)
    added = [0, 0]  # one count per writer thread

    def adder(i: int) -> Callable[[], None]:
        def add() -> None:
            meter.add(1)
            added[i] += 1
        return add

    assert interleave([adder(0), adder(1)], meter.rate, reads=2000, readers=3) == []
    total = sum(added)
    assert total > 0
    assert total / 10 <= meter.rate() <= total / 9
