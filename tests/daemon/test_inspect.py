"""InspectRequests: the answer to an inspect request waits for its result to be stored."""

from __future__ import annotations

import threading
from typing import Any

from daemon.inspect import InspectRequests
from tests.factories import result_draft

STORER_HEAD_START = 0.5  # s the trigger gives the storing thread: how wide the race is opened, never asserted


def test_a_triggered_result_stored_before_the_trigger_call_returns_is_still_the_answer() -> None:
    """``triggered`` queues the trigger and then registers the request: a pipeline fast enough to
    store the triggered result before the registration (the spool writer running while the command
    thread has not yet finished the call) still answers the request with it, once. The trigger here
    starts the storing thread itself and gives it a head start, so that it always comes first; how
    long it waits decides only how surely the race is opened, never the outcome the test asserts."""
    inspect = InspectRequests()
    answers: list[dict[str, Any]] = []
    storer: list[threading.Thread] = []

    def trigger(camera: str, part_id: str | None) -> str:
        record = result_draft(7, seq=1, camera=camera, part_id=part_id, trigger_id="t-1")
        thread = threading.Thread(target=inspect.stored, args=([record],), name="spool-writer")
        storer.append(thread)
        thread.start()
        thread.join(STORER_HEAD_START)  # stored() has returned, or waits for this call to end
        return "t-1"

    inspect.triggered("cam0", "P-1", answers.append, 30.0, trigger)
    storer[0].join()
    assert [(a["ok"], a["result"]["trigger_id"], a["result"]["part_id"]) for a in answers] == [(True, "t-1", "P-1")]
