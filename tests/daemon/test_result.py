"""The per-frame result: the cheap :class:`Result` writes exactly the payload the schema model defines."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

from daemon.result import DefectData, Result, ResultRecord, Verdict, utc_iso

T = 1_764_000_000.123456  # 2025-11-24, an arbitrary instant


def _result(**changes: object) -> Result:
    base = Result(
        seq=7, station="line-1", camera="cam0", time=T + 0.0042, frame_index=41, frame_ref=None,
        captured=T, width=640, height=480, model_name="widget", model_version=3, device="CPU",
        verdict=Verdict.OK, defects=(), inference_ms=1.234, capture_to_result_ms=5.5, error=None,
    )
    return base._replace(**changes)


CASES = {
    "ok": _result(),
    "ng with boxes and areas": _result(
        verdict=Verdict.NG,
        defects=(DefectData("scratch", 0.875, (1, 2, 30, 40)), DefectData("spot", 1e-7, None, 123),
                 DefectData("crack", 1.0, (0, 0, 640, 480), 0)),
    ),
    "error with awkward text": _result(
        verdict=Verdict.ERROR, error='post-processing failed: "quotes", back\\slash, new\nline, tab\t, ü, \x01',
        frame_ref="folder/Teil ä \"7\".png",
    ),
    "unicode names": _result(station="Linie-Süd", camera="kamera_ß", model_name="modèle", device="GPU.0"),
    "zero timings": _result(inference_ms=0.0, capture_to_result_ms=0.0, seq=1, frame_index=0),
}


def test_result_json_is_the_schema_models_json() -> None:
    """For OK, NG (boxes, areas, tiny and full scores), ERROR (quotes, newlines, control and non-ASCII
    characters) and non-ASCII names, ``Result.to_json()`` parses to exactly the pydantic model's JSON,
    with the model's key order, and validates as a ResultRecord."""
    for name, result in CASES.items():
        payload = result.to_json()
        expected = result.record().model_dump_json(by_alias=True)
        assert json.loads(payload) == json.loads(expected), name
        assert list(json.loads(payload)) == list(json.loads(expected)), name  # key order
        assert ResultRecord.model_validate_json(payload) == result.record(), name


def test_result_record_carries_every_field() -> None:
    """``Result.record()`` maps each field to the published model (ISO times, nested frame/model/timings)."""
    record = CASES["ng with boxes and areas"].record()
    assert record.seq == 7
    assert record.frame.index == 41
    assert (record.frame.width, record.frame.height) == (640, 480)
    assert record.frame.captured == "2025-11-24T16:00:00.123456Z"
    assert record.model.version == 3
    assert [d.label for d in record.defects] == ["scratch", "spot", "crack"]
    assert record.defects[0].box == (1, 2, 30, 40)
    assert record.defects[1].area == 123
    assert record.timings.inference_ms == 1.234


def test_utc_iso_matches_datetime_formatting() -> None:
    """The cached formatter gives datetime's UTC ISO text for random instants, microsecond rounding
    edges and second roll-overs, in any order (the one-second cache never leaks a stale second)."""
    rng = random.Random(5)
    instants = [rng.uniform(0, 4e9) for _ in range(2000)]
    instants += [T + k * 1e-7 for k in range(-20, 20)]  # sub-microsecond steps around one instant
    instants += [1_764_000_000 + s - 5e-7 for s in range(5)]  # rounds up into the next second
    instants += [1_764_000_000 + s + 0.9999995 for s in range(5)]
    rng.shuffle(instants)
    for epoch in instants + sorted(instants):
        assert utc_iso(epoch) == datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), epoch
