"""When the systemd watchdog may be pinged: the pipeline moved, or had nothing to do.

The rule, checked once per watchdog period (half of ``WatchdogSec``) on monotonic counters read in
pipeline order (:class:`Counters`): **every stage that had work at the start of the period finished
some of it by the end.**

=====================  =======================================  ===============================
stage                  had work at the start                    finished some of it
=====================  =======================================  ===============================
dispatch -> engine     a captured frame waited in a slot        ``submitted`` moved
engine -> decide       ``submitted > judged`` (frames in        ``judged`` moved
                       flight)
decide -> publisher    ``decided > handed`` (a result waits in  ``handed`` moved
                       the hand-off to the spool writer)
publisher              always                                   ``publisher_beats`` moved (its
                                                                own thread loop turned)
=====================  =======================================  ===============================

A deadlocked stage (a lock never released, a request that never calls back, a publisher call that
never returns, a publisher thread stuck) stops the pings, and systemd restarts the daemon after
``WatchdogSec``. What does **not** stop them:

* an idle camera: a triggered camera waiting for a part, a camera whose source ended, a camera
  that is reconnecting. Nothing waits downstream, so there is nothing to finish. (A camera that
  fails is a camera problem, shown in ``STATUS=`` and the logs; restarting the daemon would not
  bring it back faster than the capture thread's own reconnect.)
* a broker that is down or does not answer: results are handed to the publisher, which holds them
  until the broker acknowledges them; the state is ``degraded`` in ``STATUS=``. A restart cannot
  fix a broker and would only stop the inspection.

Reading upstream counters before downstream ones means work that looks pending really was pending
when the downstream counter was read: a quiet pipeline is never taken for a stalled one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Counters", "Progress"]


@dataclass(frozen=True, slots=True)
class Counters:
    """One reading of the pipeline, upstream first."""

    waiting: bool  # a captured frame waits in a slot for the dispatcher
    submitted: int  # frames started on the engine
    judged: int  # finished inferences taken by the decide thread
    decided: int  # results the decide thread produced (a cropped frame: several inferences, one result)
    handed: int  # results the publisher took: stored in the spool and passed on (the call returned)
    publisher_beats: int  # turns of the publisher's own loop


class Progress:
    """Compares each reading of ``read()`` with the previous one (see the module's rule)."""

    def __init__(self, read: Callable[[], Counters]) -> None:
        self._read = read
        self._last: Counters | None = None

    def check(self) -> str | None:
        """None when the pipeline moved (or had nothing to do) since the last call; else what is stuck
        (see :func:`stalled`).

        The first call only takes the baseline and returns None.
        """
        now = self._read()
        before, self._last = self._last, now
        if before is None:
            return None
        return stalled(before, now)


def stalled(before: Counters, now: Counters) -> str | None:
    """Every stage that had work at ``before`` and finished none of it by ``now``, downstream first
    (the first named is the likely cause, the others wait for it); None when all moved."""
    stuck: list[str] = []
    if now.publisher_beats == before.publisher_beats:
        stuck.append("the publisher's thread stopped turning")
    if before.decided > before.handed and now.handed == before.handed:
        stuck.append("results wait for the publisher but none was taken")
    if before.submitted > before.judged and now.judged == before.judged:
        stuck.append(f"{before.submitted - before.judged} inference(s) in flight but none finished")
    if before.waiting and now.submitted == before.submitted:
        stuck.append("frames wait for the engine but none was submitted")
    return "; ".join(stuck) or None
