"""Evidence images: the decide thread's cost per NG frame (``offer``) and the writer's per image.

Run: ``PYTHONPATH=. python benchmarks/evidence_bench.py`` (256x256 frames, one drawn box, quality 85).
Figures depend on the machine and its load; nothing here is a pass/fail threshold.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from daemon.config import EvidenceConfig
from daemon.evidence import EvidenceStore, EvidenceWriter
from daemon.result import DefectData, Result, Verdict

N = 2000


def draft(i: int) -> Result:
    return Result(
        seq=0, station="s", camera="cam0", time=1_767_225_600.0 + i / 1e6, frame_index=i, frame_ref=None,
        captured=1_767_225_600.0, width=256, height=256, model_name="m", model_version=1, device="CPU",
        verdict=Verdict.NG, defects=(DefectData(label="scratch", score=0.9, box=(10, 10, 60, 40)),),
        inference_ms=1.0, capture_to_result_ms=1.0,
    )


def main() -> None:
    image = np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    cfg = EvidenceConfig(enabled=True, queue=N)
    writer = EvidenceWriter(cfg, EvidenceStore(Path(tempfile.mkdtemp(prefix="ovedge-evidence-")), cfg))
    drafts = [draft(i) for i in range(N)]
    t = time.perf_counter()
    for d in drafts:
        writer.offer(d, image)  # the writer is not running yet: this is the decide thread's share only
    offer_us = (time.perf_counter() - t) / N * 1e6
    t = time.perf_counter()
    with writer:
        pass  # starts the writer; leaving waits until every queued image is written
    write_ms = (time.perf_counter() - t) / N * 1e3
    print(f"offer (decide thread): {offer_us:.1f} us per NG frame; writer: {write_ms:.2f} ms per image "
          f"(draw + JPEG + write), {writer.bytes_written / N / 1024:.1f} KiB per image, {writer.written} written")


if __name__ == "__main__":
    main()
