"""The IR metadata schema: written into a real IR's rt_info and read back; inconsistent metadata refused."""

from __future__ import annotations

from pathlib import Path

import openvino as ov
import pytest
from pydantic import ValidationError

from ovedge.errors import ModelError
from ovedge.irmeta import IRMeta, Preprocessing, ResizeMode, read_model_info, read_rt_info
from tests.factories import channel_classifier, tiny_ir

PRE = Preprocessing(input_width=32, input_height=24, resize=ResizeMode.LETTERBOX, mean=(1, 2, 3), std=(4, 5, 6))


def test_round_trip_through_a_saved_ir(tmp_path: Path) -> None:
    """Our metadata comes back equal; Model API's model_info keys are written beside it."""
    meta = IRMeta(
        task="classification", output_layout="logits", labels=("ok", "deep scratch", "dent"), ok_labels=("ok",),
        preprocessing=PRE,
    )
    xml = tiny_ir(tmp_path / "model.xml", channel_classifier((1.0, 1.0, 1.0)), meta=meta)
    model = ov.Core().read_model(xml)
    assert read_rt_info(model) == meta
    info = read_model_info(model)
    assert (info["model_type"], info["labels"], info["resize_type"]) == (
        "Classification", "ok deep_scratch dent", "fit_to_window_letterbox"
    )
    assert (info["mean_values"], info["scale_values"]) == ("1.0 2.0 3.0", "4.0 5.0 6.0")


def test_ir_without_metadata_is_refused_with_the_way_out(tmp_path: Path) -> None:
    """An IR not made by ovedge-convert is a ModelError that says how to make one."""
    xml = tiny_ir(tmp_path / "model.xml", channel_classifier((1.0, 1.0, 1.0)))
    with pytest.raises(ModelError, match=r"carries no ovedge metadata .* convert it with `ovedge-convert`"):
        read_rt_info(ov.Core().read_model(xml), source="foreign.xml")


def test_layout_must_fit_task_and_ok_labels_must_be_labels() -> None:
    """A detection layout on a classification task, or an OK label that is no label, is refused."""
    with pytest.raises(ValidationError, match="output layout yolov8 does not fit task classification"):
        IRMeta(task="classification", output_layout="yolov8", labels=("a",), preprocessing=PRE)
    with pytest.raises(ValidationError, match=r"ok_labels \['good'\] are not among the labels"):
        IRMeta(task="classification", output_layout="logits", labels=("a", "b"), ok_labels=("good",),
               preprocessing=PRE)


def test_bad_json_is_one_line_naming_the_field() -> None:
    """Metadata JSON with a wrong field is one ModelError line naming the source and the field."""
    with pytest.raises(ModelError) as err:
        IRMeta.from_json('{"task": "classification"}', source="x.xml")
    assert str(err.value).startswith("x.xml: output_layout: Field required")
    assert "\n" not in str(err.value)
