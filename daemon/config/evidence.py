"""``[evidence]``: NG frames (and a sample of OK frames) saved as JPEG with the defects drawn, and
frames the model was unsure about kept as they were shot, for re-labelling.

Written by the ``evidence-writer`` thread (:mod:`daemon.evidence`) under ``<state>/evidence/``;
the files count against ``[spool] quota_bytes`` and go first when it is full.
"""

from __future__ import annotations

from pydantic import Field

from daemon.config._base import Section, TopicLevel

__all__ = ["EvidenceConfig"]

MIB = 1024 * 1024


class EvidenceConfig(Section):
    """Evidence images: what is saved, how many are kept, which cameras also publish them."""

    enabled: bool = Field(False, description="save NG frames as JPEG under <state>/evidence/<camera>/")
    ok_every: int = Field(
        0, ge=0, description="also save every Nth OK frame of each camera (a sample for audits); 0 = none",
    )
    quality: int = Field(85, ge=10, le=100, description="JPEG quality")
    queue: int = Field(
        32, ge=1, le=10000, description="images waiting for the writer thread; when full, a new image is "
        "dropped and counted, and its result says \"evidence\": null (the verdict is never held back)",
    )
    max_files: int = Field(10000, ge=1, description="most evidence files kept; the oldest go first")
    max_bytes: int = Field(256 * MIB, ge=1024, description="most bytes of evidence files kept; the oldest go first")
    max_age: float = Field(7 * 86400.0, gt=0, description="seconds an evidence file is kept")
    uncertain_margin: float = Field(
        0.0, ge=0.0, le=0.5, description="also keep frames on which a score lies within this distance of its "
        "label's threshold (the model was unsure): unmarked PNG + what the model found (JSON) under "
        "<state>/evidence/<camera>/review/, for re-labelling (ovedged export-review writes a CVAT task); 0 = off",
    )
    publish: tuple[TopicLevel, ...] = Field(
        (), description="camera ids whose images are also published to <prefix>/<station>/<camera>/evidence "
        "(QoS 1, not spooled); empty = none",
    )
