"""``[spool]``: delivery through the durable result spool (:mod:`daemon.spool`).

Quota and retention of the spool in the state folder, how stored results are sent (rate, delay
after a reconnect, retries), how long a clean stop waits, and the MQTT v5 message expiry of results.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from daemon.config._base import Section

__all__ = ["SpoolConfig"]

MIB = 1024 * 1024


class SpoolConfig(Section):
    """Delivery: the durable result spool in the state folder, replay pacing, retention, quota."""

    quota_bytes: int = Field(
        512 * MIB, ge=1024,
        description="most bytes the spool may hold (payload + 100 B per row); when full, evidence goes first, "
        "then delivered rows; undelivered verdicts are never dropped: the daemon turns degraded instead",
    )
    retention: float = Field(86400.0, ge=0, description="seconds a delivered result is kept for replay")
    retention_bytes: int = Field(64 * MIB, ge=0, description="most bytes of delivered results kept for replay")
    batch_max: int = Field(64, ge=1, le=10000, description="most results stored in one transaction")
    batch_ms: float = Field(
        8.0, ge=0, le=1000, description="longest wait (ms) of the spool writer for more results to join a "
        "transaction while results queue (one came within 5 ms of the last transaction): one fsync and one "
        "wake of the sender for many; a lone result (a line at tens of fps) is stored at once; 0 = never wait",
    )
    synchronous: Literal["full", "normal"] = Field(
        "full", description="SQLite synchronous: full survives a power cut; normal only a crash of the daemon"
    )
    replay_rate: float = Field(
        200.0, gt=0, description="results per second sent on top of the production rate while a backlog "
        "(after an outage or a restart) goes out: live results are never held back",
    )
    replay_delay: float = Field(
        2.0, ge=0, description="seconds after a (re)connect before a backlog of stored results goes out, so that "
        "subscribers can reconnect first (no wait when nothing is waiting)",
    )
    retry_interval: float = Field(
        30.0, gt=0, description="seconds between new attempts for results the broker answered with 'no matching "
        "subscribers' (0x10) or refused (e.g. 0x87)",
    )
    drain_timeout: float = Field(
        10.0, ge=0, description="seconds a clean stop waits for PUBACKs; what is left waits in the spool"
    )
    message_expiry: int = Field(
        0, ge=0, description="MQTT v5 message expiry of results in seconds; 0 = never expire"
    )
