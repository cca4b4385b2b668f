"""The publisher sending from the spool, against a real Mosquitto: PUBACK outcomes, alarms, window, properties."""

from __future__ import annotations

import json
import time
from pathlib import Path

from daemon.config import DaemonConfig, load_config
from daemon.publisher import Publisher
from daemon.spool import RowState, Spool
from tests.factories import result_drafts
from tests.waiting import wait_until
from tools.mosquitto import Mosquitto
from tools.subscriber import Subscriber


def _cfg(tmp_path: Path, port: int, spool: str = "", mqtt: str = "") -> DaemonConfig:
    path = tmp_path / "c.toml"
    path.write_text(f"""
[station]
name = "s1"
[[cameras]]
id = "cam0"
[cameras.source]
type = "synthetic"
[mqtt]
port = {port}
connect_timeout = 5
{mqtt}
[state]
dir = "{tmp_path / 'state'}"
[spool]
replay_delay = 0
retry_interval = 1
drain_timeout = 5
{spool}
""", encoding="utf-8")
    return load_config(path)


def test_stored_results_are_delivered_marked_and_carry_v5_properties(broker: Mosquitto, tmp_path: Path) -> None:
    """Rows committed to the spool reach the subscriber in seq order, are marked delivered on PUBACK,
    and carry content type, message expiry and the station/camera/model user properties."""
    cfg = _cfg(tmp_path, broker.port, spool="message_expiry = 600")
    with Spool(cfg.state_dir(), cfg.spool) as spool, Subscriber(broker.port, ["ovedge/s1/cam0/result"]) as sub, \
            Publisher(cfg, dict, spool=spool) as pub:
        records = spool.commit(result_drafts(20, model_version=2))
        pub.wake()
        assert wait_until(lambda: spool.depth == 0)
        assert all(r.state is RowState.DELIVERED for r in spool.since(0))
    assert [r.seq for r in records] == list(range(1, 21))
    got = [json.loads(p)["seq"] for _, p, _ in sub.drain()]
    assert got == list(range(1, 21))
    _topic, props = sub.properties.get(timeout=5)
    assert props.ContentType == "application/json"
    assert 0 < props.MessageExpiryInterval <= 600
    assert dict(props.UserProperty) == {"station": "s1", "camera": "cam0", "model": "demo", "model_version": "2"}


def test_not_authorised_raises_an_alarm_and_keeps_the_rows(tmp_path: Path) -> None:
    """PUBACK 0x87 on results: an alarm on <prefix>/<station>/alarm, in the status, and the rows stay undelivered."""
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite ovedge/s1/status\ntopic readwrite ovedge/s1/alarm\n", encoding="utf-8")
    with Mosquitto(extra=f"acl_file {acl}") as b:
        cfg = _cfg(tmp_path, b.port)
        with Spool(cfg.state_dir(), cfg.spool) as spool, Subscriber(b.port, ["ovedge/s1/#"]) as sub, \
                Publisher(cfg, dict, spool=spool) as pub:
            spool.commit(result_drafts(5, model_version=2))
            pub.wake()
            assert wait_until(lambda: pub.counters.rejected >= 5)
            assert spool.depth == 5
            assert {r.state for r in spool.since(0)} == {RowState.REJECTED}
            assert wait_until(lambda: any(t.endswith("/alarm") for t, _, _ in list(sub.messages.queue)))
            pub.publish_status()
            assert wait_until(lambda: any(t.endswith("/status") and json.loads(p)["alarms"]
                                     for t, p, _ in list(sub.messages.queue)))
        alarms = [json.loads(p) for t, p, _ in sub.drain() if t.endswith("/alarm")]
    assert alarms[0]["alarm"] == "rejected:cam0" and alarms[0]["active"] is True
    assert "0x87" in alarms[0]["reason"]
    assert pub.counters.delivered == 0


def test_no_subscriber_keeps_rows_until_someone_listens(broker: Mosquitto, tmp_path: Path) -> None:
    """PUBACK 0x10 (nobody subscribed) is not a delivery: the rows stay and go again once a subscriber exists."""
    cfg = _cfg(tmp_path, broker.port)
    with Spool(cfg.state_dir(), cfg.spool) as spool, Publisher(cfg, dict, spool=spool) as pub:
        spool.commit(result_drafts(5, model_version=2))
        pub.wake()
        assert wait_until(lambda: pub.counters.no_subscribers >= 5)
        assert spool.depth == 5
        assert {r.state for r in spool.pending(0, 10)} == {RowState.NO_SUBSCRIBER}
        with Subscriber(broker.port, ["ovedge/s1/cam0/result"]) as sub:
            assert wait_until(lambda: spool.depth == 0)  # retried after retry_interval
            got = sorted({json.loads(p)["seq"] for _, p, _ in sub.drain()})
    assert got == [1, 2, 3, 4, 5]


def test_backlog_goes_out_in_order_within_the_window(tmp_path: Path) -> None:
    """A backlog of 1,500 rows is sent in seq order and never with more than mqtt.max_inflight unacknowledged.
    The broker's per-subscriber queue is unbounded here: at 3,000/s Mosquitto's default 1,000 would
    drop what a test subscriber stalled for a third of a second on a loaded machine had not taken yet
    (test_replay_gap covers that drop)."""
    most = 0
    with Mosquitto(extra="max_queued_messages 0") as broker:
        cfg = _cfg(tmp_path, broker.port, mqtt="max_inflight = 40", spool="replay_rate = 3000")
        with Spool(cfg.state_dir(), cfg.spool) as spool, Subscriber(broker.port, ["ovedge/s1/cam0/result"]) as sub, \
                Publisher(cfg, dict, spool=spool) as pub:
            for _ in range(15):
                spool.commit(result_drafts(100, model_version=2))
            pub.wake()
            deadline = time.monotonic() + 120  # a hang guard
            while spool.depth and time.monotonic() < deadline:
                most = max(most, pub.outstanding())
                time.sleep(0.001)
            assert spool.depth == 0
            assert wait_until(lambda: sub.messages.qsize() >= 1500)
        seqs = [json.loads(p)["seq"] for _, p, _ in sub.drain()]
    assert seqs == list(range(1, 1501))
    assert 0 < most <= 40
