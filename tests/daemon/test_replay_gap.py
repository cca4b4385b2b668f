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


# Mosquitto's window for one subscriber: max_inflight_messages (20) plus max_queued_messages (10, below).
# A replay page no larger than it arrives whole however long the subscriber stalls; a bigger burst
# (or the whole replay at replay_rate) is dropped by the broker beyond it while the subscriber lags,
# which is what failed this test on a loaded CI machine.
WINDOW = 20 + 10
PAGE = 20  # <= WINDOW


def test_replay_fills_the_gap_the_brokers_queue_dropped(tmp_path: Path) -> None:
    """With max_queued_messages 10, a persistent-session subscriber away while 60 results are delivered
    (PUBACK success: the broker accepted them) gets back fewer than 60; paging through cmd/replay
    {"since": S, "limit": 20} (each page waited for, as a subscriber with a small broker queue must)
    then gives it every seq 1..60, and the answers chain by ``last`` and ``more``."""
    with Mosquitto(extra="max_inflight_messages 20\nmax_queued_messages 10") as b:
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
                    answers = []
                    with Requester(b.port, station="station1") as req:
                        since = 0
                        while True:
                            answer = req.ask("replay", {"since": since, "limit": PAGE})
                            answers.append(answer)
                            page = set(range(answer["first"], answer["last"] + 1))

                            def arrived(page: set[int] = page) -> bool:
                                got.update(json.loads(p)["seq"] for _, p, _ in sub.drain())
                                return page <= got

                            assert wait_until(arrived), f"page {sorted(page)[0]}..{sorted(page)[-1]} incomplete"
                            if not answer["more"]:
                                break
                            since = answer["last"]
    assert before < 60  # the broker's queue dropped results it had acknowledged
    assert got == set(range(1, 61))
    assert [(a["ok"], a["count"], a["first"], a["last"], a["more"]) for a in answers] == [
        (True, 20, 1, 20, True), (True, 20, 21, 40, True), (True, 20, 41, 60, False)]
