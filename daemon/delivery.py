"""The seam between deciding and publishing: drafts -> spool (numbered, stored) -> publisher.

The decide thread calls :meth:`Delivery.submit` with a batch of judged frames. They are numbered
and stored in one transaction; the ``mqtt-send`` thread publishes them from the spool.

When the spool cannot store a batch (quota, disk full, read-only, unopenable) the daemon does not
pretend: the status turns ``degraded`` with the reason, the ``spool`` alarm is raised, each of
those inspections becomes an ``ERROR`` result naming the reason (published directly when the
broker is there, never stored), and the log says so once per change of state, not per frame.
Each later batch tries the spool again (the spool itself limits real write attempts to one per
second), so the daemon recovers on its own when storage comes back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from daemon.publisher import Alarms, Publisher
from daemon.result import ResultDraft, ResultRecord
from daemon.spool import Spool, SpoolStorageError

log = logging.getLogger(__name__)

ALARM = "spool"


class Delivery:
    def __init__(self, spool: Spool, publisher: Publisher, alarms: Alarms) -> None:
        self._spool = spool
        self._publisher = publisher
        self._alarms = alarms
        self._lock = threading.Lock()
        self.problem: str | None = None  # why results are not being stored; None = they are
        self.unstored = 0  # inspections that became ERROR results because they could not be stored

    def start(self) -> None:
        """Say at once if the spool could not be opened at start-up."""
        if self._spool.problem is not None:
            self._degrade(self._spool.problem)

    def submit(self, drafts: Sequence[ResultDraft]) -> list[ResultRecord]:
        """Store and queue a batch; the records returned are what subscribers will receive."""
        try:
            records = self._spool.commit(drafts)
        except SpoolStorageError as exc:
            self._degrade(exc.reason)
            reason = f"result not stored: {exc.reason}"
            errors = [d.as_error(reason) for d in drafts]
            seqs = self._spool.number_unstored(len(errors))
            records = [d.numbered(s) for d, s in zip(errors, seqs, strict=True)]
            self.unstored += len(records)
            for record in records:
                self._publisher.publish_result(record)
            return records
        if self.problem is not None:
            self._recover()
        self._publisher.wake()
        return records

    def _degrade(self, reason: str) -> None:
        with self._lock:
            if self.problem == reason:
                return
            self.problem = reason
        log.error("results cannot be stored: %s; status degraded, every new inspection is an ERROR result "
                  "until storage is back", reason)
        self._alarms.raise_(ALARM, reason)
        self._publisher.set_health("degraded", reason)

    def _recover(self) -> None:
        with self._lock:
            if self.problem is None:
                return
            self.problem = None
        log.warning("results are stored again; status online (%d inspections became ERROR results meanwhile)",
                    self.unstored)
        self._alarms.clear(ALARM)
        self._publisher.set_health("online", None)
