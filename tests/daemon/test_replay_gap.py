"""A subscriber away longer than the broker's queue: results the broker dropped (after PUBACK success)
are filled in by the replay command, against a real Mosquitto with a small per-client queue."""

from __future__ import annotations

import json
from pathlib import Path

from daemon.commands import CommandContext, Commands
from daemon.config import load_config
from daemon.inspect import InspectRequests
from daemon.publisher import Publisher
from daemon.spool import Spool
from tests.configs import write_config
from tests.factories import result_drafts
from tests.waiting import wait_until
from tools.mosquitto import Mosquitto
from tools.request import Requester
from tools.subscriber import Subscriber

TOPIC = "ovedge/station1/cam0/result"


def test_replay_fills_the_gap_the_brokers_queue_dropped(tmp_path: Path) -> None:
    """With max_queued_messages 10, a persistent-session subscriber away while 60 results are delivered
    (PUBACK success: the broker accepted them) gets back fewer than 60; cmd/replay {"since": 0} then
    re-publishes all of them and the subscriber has every seq 1..60."""
    with Mosquitto(extra="max_queued_messages 10") as b:
        cfg = load_config(write_config(
            tmp_path, station={"name": "station1"}, state={"dir": tmp_path / "state"},
            mqtt={"port": b.port, "connect_timeout": 5}, spool={"replay_delay": 0, "retry_interval": 1},
            commands={"enabled": True}))
        with Subscriber(b.port, [TOPIC], client_id="mes-gap", session_expiry=3600):
            pass  # the broker now keeps a session (and a 10-message queue) for mes-gap
        commands = Commands(cfg)
        with Spool(cfg.state_dir(), cfg.spool) as spool, \
                Publisher(cfg, dict, spool=spool, commands=commands) as pub:
            commands.bind(CommandContext(responder=pub, spool=spool, swapper=None, model=lambda: ("demo", 1),
                                         versions=lambda _n: [1], cameras=("cam0",), inspect=InspectRequests(),
                                         reload=dict))
            with commands:
                spool.commit(result_drafts(60, station="station1"))
                pub.wake()
                assert wait_until(lambda: spool.depth == 0)  # every one acknowledged with success by the broker
                got: set[int] = set()
                with Subscriber(b.port, [TOPIC], client_id="mes-gap", session_expiry=3600) as sub:
                    wait_until(lambda: False, 1.0)  # let the queued ones arrive; the count is checked, not the time
                    got.update(json.loads(p)["seq"] for _, p, _ in sub.drain())
                    before = len(got)
                    with Requester(b.port, station="station1") as req:
                        answer = req.ask("replay", {"since": 0})

                    def complete() -> bool:
                        got.update(json.loads(p)["seq"] for _, p, _ in sub.drain())
                        return got == set(range(1, 61))

                    assert wait_until(complete)
    assert before < 60  # the broker's queue dropped results it had acknowledged
    assert answer["ok"] is True and (answer["count"], answer["first"], answer["last"]) == (60, 1, 60)
