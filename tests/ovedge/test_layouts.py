"""Post-processing on real OpenVINO IRs with known outputs: every output layout, mapped back to the frame."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from ovedge.errors import ModelError
from ovedge.irmeta import (
    TASK_LAYOUTS,
    IRMeta,
    OutputLayout,
    Preprocessing,
    ResizeMode,
    read_rt_info,
    write_rt_info,
)
from ovedge.layouts import (
    ANOMALY_LABEL,
    DECODERS,
    Detection,
    build_postprocessor,
    input_to_frame,
    output_shapes,
)
from tests.factories import constant, tiny_ir, tiny_model

CORE = ov.Core()


def _meta(layout: OutputLayout, labels: Sequence[str], size: tuple[int, int], **kw: Any) -> IRMeta:
    task = next(t for t, layouts in TASK_LAYOUTS.items() if layout in layouts)
    resize = kw.pop("resize", ResizeMode.STRETCH)
    pre = Preprocessing(input_width=size[1], input_height=size[0], resize=resize)
    return IRMeta(task=task, output_layout=layout, labels=tuple(labels), preprocessing=pre, **kw)


def _run(
    tmp_path: Path,
    meta: IRMeta,
    hw: tuple[int, int],
    graph: Callable[[Any], list[Any]],
    image: np.ndarray,
) -> tuple[IRMeta, list[tuple[int, ...]], list[np.ndarray]]:
    """Build an IR (u8 NHWC input of ``hw``) with ``graph``'s outputs, save it with rt_info, read it
    back, compile on CPU, infer ``image``; return the metadata read back, output shapes, outputs."""
    xml = tiny_ir(tmp_path / "model.xml", graph, input_shape=(1, *hw, 3), meta=meta)
    read = CORE.read_model(xml)
    compiled = CORE.compile_model(read, "CPU")
    request = compiled.create_infer_request()
    request.infer([image[None]])
    outputs = [request.get_output_tensor(i).data.copy() for i in range(len(compiled.outputs))]
    return read_rt_info(read, source=str(xml)), output_shapes(compiled), outputs


def _decode(
    meta: IRMeta, shapes: list[tuple[int, ...]], outputs: list[np.ndarray], frame_hw: tuple[int, int]
) -> list[Detection]:
    return build_postprocessor(meta, shapes)(outputs, frame_hw)


def test_every_layout_has_a_decoder() -> None:
    """The registry covers every OutputLayout of the metadata schema."""
    assert set(DECODERS) == set(OutputLayout)


# ---------------------------------------------------------------------------- classification


def test_classification_logits_softmax_top1(tmp_path: Path) -> None:
    """LOGITS: softmax over the [1, C] output, best label with its probability, whole frame."""
    meta = _meta(OutputLayout.LOGITS, ["ok", "scratch", "dent"], (8, 8))
    image = np.zeros((8, 8, 3), np.uint8)
    image[..., :] = (1, 3, 2)  # channel means are the logits
    meta, shapes, outs = _run(tmp_path, meta, (8, 8), lambda f: [ops.reduce_mean(f, [1, 2]).output(0)], image)
    assert shapes == [(1, 3)]
    found = _decode(meta, shapes, outs, (480, 640))
    expected = math.exp(3) / (math.exp(1) + math.exp(3) + math.exp(2))
    assert found == [Detection("scratch", pytest.approx(expected, rel=1e-5), None)]


def test_classification_probabilities_are_not_softmaxed(tmp_path: Path) -> None:
    """PROBABILITIES: the output is reported as is (no second softmax)."""
    meta = _meta(OutputLayout.PROBABILITIES, ["ok", "ng"], (8, 8))
    probs = np.array([[0.3, 0.7]], np.float32)
    meta, shapes, outs = _run(tmp_path, meta, (8, 8), lambda f: [constant(f, probs)], np.zeros((8, 8, 3), np.uint8))
    assert _decode(meta, shapes, outs, (8, 8)) == [Detection("ng", pytest.approx(0.7, abs=1e-3), None)]


def test_classification_wrong_class_count_is_refused(tmp_path: Path) -> None:
    """A [1, 1000] head with four labels is refused at load time with both numbers in the message."""
    meta = _meta(OutputLayout.LOGITS, ["a", "b", "c", "d"], (8, 8))
    out = np.zeros((1, 1000), np.float32)
    meta, shapes, _ = _run(tmp_path, meta, (8, 8), lambda f: [constant(f, out)], np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ModelError) as err:
        build_postprocessor(meta, shapes)
    assert str(err.value) == ("classification IR must have one [1, C] output with C = len(labels) = 4, found [1, 1000]")


# ---------------------------------------------------------------------------- detection


def _yolo_head() -> np.ndarray:
    # columns: cx, cy, w, h, score(class 0 "scratch"), score(class 1 "dent") in 64x64 input pixels
    rows = [
        (32, 32, 20, 10, 0.9, 0.0),  # kept
        (33, 32, 20, 10, 0.8, 0.0),  # same class, IoU ~0.9 with the first: suppressed
        (33, 32, 20, 10, 0.0, 0.7),  # other class at the same place: kept (NMS per class)
        (10, 10, 4, 4, 0.2, 0.1),  # below confidence 0.5
        (62, 10, 8, 4, 0.0, 0.6),  # kept, crosses the right edge (clipped to the frame)
    ]
    return np.array(rows, np.float32).T[None]  # [1, 6, 5]


def test_yolov8_nms_per_class_and_letterbox_undone(tmp_path: Path) -> None:
    """YOLOv8 [1, 4+C, N]: threshold, per-class NMS, boxes mapped back through centred letterbox."""
    meta = _meta(OutputLayout.YOLOV8, ["scratch", "dent"], (64, 64), resize=ResizeMode.LETTERBOX)
    head = _yolo_head()
    meta, shapes, outs = _run(tmp_path, meta, (64, 64), lambda f: [constant(f, head)], np.zeros((64, 64, 3), np.uint8))
    assert shapes == [(1, 6, 5)]
    # frame 480x640 -> scale 0.1, 64x48 image, 8 rows of padding above and below
    found = _decode(meta, shapes, outs, (480, 640))
    assert [(d.label, round(d.score, 3), d.box) for d in found] == [
        ("scratch", 0.9, (220, 190, 420, 290)),
        ("dent", 0.7, (230, 190, 430, 290)),
        ("dent", 0.6, (580, 0, 640, 40)),  # y0 = (8 - 8) / 0.1 = 0; x1 = 660 clipped to 640
    ]
    assert all(d.area is None for d in found)


def test_yolov8_wrong_channel_count_is_refused(tmp_path: Path) -> None:
    """A YOLOv8 head whose 4+C does not match the labels is refused naming both."""
    meta = _meta(OutputLayout.YOLOV8, ["scratch", "dent", "crack"], (64, 64))
    meta, shapes, _ = _run(
        tmp_path, meta, (64, 64), lambda f: [constant(f, _yolo_head())], np.zeros((64, 64, 3), np.uint8)
    )
    with pytest.raises(ModelError, match=r"4\+C = 4\+len\(labels\) = 7, found \[1, 6, 5\]"):
        build_postprocessor(meta, shapes)


def test_yolov8_flood_is_cut_to_the_best_boxes(tmp_path: Path) -> None:
    """1500 separate boxes above the threshold: the 300 best come out, best first (bounded NMS work)."""
    n = 1500
    head = np.zeros((1, 5, n), np.float32)
    head[0, 0] = (np.arange(n) % 50) * 10 + 5  # cx on a 50 x 30 grid of 4x4 boxes, 10 px apart
    head[0, 1] = (np.arange(n) // 50) * 10 + 5
    head[0, 2:4] = 4
    head[0, 4] = np.linspace(0.5, 0.99, n, dtype=np.float32)
    meta = _meta(OutputLayout.YOLOV8, ["dent"], (300, 500))
    meta, shapes, outs = _run(tmp_path, meta, (8, 8), lambda f: [constant(f, head)], np.zeros((8, 8, 3), np.uint8))
    found = _decode(meta, shapes, outs, (300, 500))
    assert len(found) == 300
    assert [d.score for d in found] == pytest.approx(sorted(head[0, 4].tolist(), reverse=True)[:300], abs=1e-2)


def test_ssd_normalised_boxes_stretch(tmp_path: Path) -> None:
    """SSD [1,1,N,7]: rows after image_id -1 or below confidence dropped, normalised boxes scaled."""
    det = np.array(
        [
            [
                [
                    [0, 1, 0.95, 0.10, 0.20, 0.50, 0.60],
                    [0, 2, 0.40, 0.00, 0.00, 1.00, 1.00],  # below 0.5
                    [0, 2, 0.55, 0.50, 0.50, 1.00, 1.00],
                    [-1, 0, 0.00, 0.0, 0.0, 0.0, 0.0],  # end marker
                    [0, 1, 0.99, 0.0, 0.0, 0.1, 0.1],  # garbage after the end marker
                ]
            ]
        ],
        np.float32,
    )
    meta = _meta(OutputLayout.SSD, ["background", "scratch", "dent"], (32, 32))
    meta, shapes, outs = _run(tmp_path, meta, (32, 32), lambda f: [constant(f, det)], np.zeros((32, 32, 3), np.uint8))
    found = _decode(meta, shapes, outs, (100, 200))
    assert [(d.label, round(d.score, 2), d.box) for d in found] == [
        ("scratch", 0.95, (20, 20, 100, 60)),
        ("dent", 0.55, (100, 50, 200, 100)),
    ]


def test_boxes_scores_labels_centre_crop_undone(tmp_path: Path) -> None:
    """torchvision-style three outputs: boxes in input pixels mapped back through a centre crop."""
    boxes = np.array([[8, 8, 24, 24], [0, 0, 32, 32], [1, 1, 2, 2]], np.float32)
    scores = np.array([0.6, 0.9, 0.1], np.float32)
    labels = np.array([1, 7, 1], np.float32)  # 7 is not a known label
    meta = _meta(OutputLayout.BOXES_SCORES_LABELS, ["background", "dent"], (32, 32), resize=ResizeMode.CROP)
    meta, shapes, outs = _run(
        tmp_path,
        meta,
        (32, 32),
        lambda f: [constant(f, boxes), constant(f, scores), constant(f, labels.astype(np.int64))],
        np.zeros((32, 32, 3), np.uint8),
    )
    # frame 64x128 (h, w) -> scale max(32/128, 32/64) = 0.5 -> 64x32 image, 16 columns cut each side
    found = _decode(meta, shapes, outs, (64, 128))
    assert [(d.label, round(d.score, 2), d.box) for d in found] == [
        ("class_7", 0.9, (32, 0, 96, 64)),
        ("dent", 0.6, (48, 16, 80, 48)),
    ]


def test_boxes_scores_labels_wrong_outputs_refused(tmp_path: Path) -> None:
    """A detection IR with one output declared torchvision-style is refused with the expected layout."""
    meta = _meta(OutputLayout.BOXES_SCORES_LABELS, ["dent"], (8, 8))
    meta, shapes, _ = _run(
        tmp_path,
        meta,
        (8, 8),
        lambda f: [constant(f, np.zeros((1, 5, 4), np.float32))],
        np.zeros((8, 8, 3), np.uint8),
    )
    with pytest.raises(ModelError, match=r"three outputs .* found \[1, 5, 4\]"):
        build_postprocessor(meta, shapes)


# ---------------------------------------------------------------------------- segmentation


def _seg_image() -> np.ndarray:
    """16x16: channel 0 (ok) everywhere; one scratch block; two separate dent blocks."""
    image = np.zeros((16, 16, 3), np.uint8)
    image[..., 0] = 10
    image[2:5, 3:9, 1] = 20  # scratch, 3x6 = 18 px
    image[10:12, 1:3, 2] = 20  # dent, 2x2
    image[12:16, 12:16, 2] = 20  # dent, 4x4
    return image


def test_segmentation_logits_to_regions(tmp_path: Path) -> None:
    """SEG_LOGITS: argmax class map -> one region per connected component of each non-OK class."""
    meta = _meta(OutputLayout.SEG_LOGITS, ["ok", "scratch", "dent"], (16, 16), ok_labels=("ok",))
    meta, shapes, outs = _run(
        tmp_path, meta, (16, 16), lambda f: [ops.transpose(f, [0, 3, 1, 2]).output(0)], _seg_image()
    )
    assert shapes == [(1, 3, 16, 16)]
    found = _decode(meta, shapes, outs, (32, 64))  # stretch: x * 4, y * 2, area * 8
    winner = 1 / (1 + math.exp(-10) + math.exp(-20))  # softmax of the winning logit 20 against 10 and 0
    assert [(d.label, d.box, d.area) for d in found] == [
        ("scratch", (12, 4, 36, 10), 18 * 8),
        ("dent", (48, 24, 64, 32), 16 * 8),
        ("dent", (4, 20, 12, 24), 4 * 8),
    ]
    for det in found:
        assert det.score == pytest.approx(winner, rel=1e-4)


def test_outlines_only_when_asked_and_following_the_region(tmp_path: Path) -> None:
    """Built with outlines=True, a region carries its outer outline in frame pixels (an L-shape
    keeps its corners, a ring only its outside, a single pixel has none); the default decoder,
    the one cameras use, carries none and finds the same regions."""
    image = np.zeros((16, 16, 3), np.uint8)
    image[..., 0] = 10
    image[2:8, 2:4, 1] = 20  # the L: a 6x2 column ...
    image[6:8, 2:10, 1] = 20  # ... and a 2x8 foot
    image[10:15, 9:14, 1] = 20  # a 5x5 ring ...
    image[12, 11, 1] = 0  # ... with a one-pixel hole
    image[1, 13, 1] = 20  # a lone pixel
    meta = _meta(OutputLayout.SEG_LOGITS, ["ok", "scratch", "dent"], (16, 16), ok_labels=("ok",))
    meta, shapes, outs = _run(tmp_path, meta, (16, 16), lambda f: [ops.transpose(f, [0, 3, 1, 2]).output(0)], image)
    plain = build_postprocessor(meta, shapes)(outs, (32, 32))  # stretch: x2 both ways
    outlined = build_postprocessor(meta, shapes, outlines=True)(outs, (32, 32))
    assert [(d.box, d.area) for d in plain] == [(d.box, d.area) for d in outlined]
    assert all(d.outline is None for d in plain)
    by_box = {d.box: d.outline for d in outlined}
    ell = by_box[(4, 4, 20, 16)]
    assert ell is not None
    corners = sorted(zip(ell[0::2], ell[1::2], strict=True))
    # the centres of the boundary pixels as OpenCV traces them (8-connected: the inner corner is cut
    # diagonally), x2 + 1: columns 2..9 -> 5..19, rows 2..7 -> 5..15
    assert corners == sorted([(5, 5), (5, 15), (19, 15), (19, 13), (9, 13), (7, 11), (7, 5)])
    ring = by_box[(18, 20, 28, 30)]
    assert ring is not None
    assert sorted(zip(ring[0::2], ring[1::2], strict=True)) == [(19, 21), (19, 29), (27, 21), (27, 29)]
    assert by_box[(26, 2, 28, 4)] is None  # one pixel: its box is all there is


def test_segmentation_class_map_letterbox_ignores_padding(tmp_path: Path) -> None:
    """CLASS_MAP [1,1,H,W] class indices: regions mapped through letterbox; padding rows are ignored."""
    meta = _meta(
        OutputLayout.CLASS_MAP,
        ["ok", "scratch", "dent"],
        (16, 16),
        ok_labels=("ok",),
        resize=ResizeMode.LETTERBOX,
    )
    image = _seg_image()
    image[0:2, :, 1] = 30  # "scratch" in the top padding band: must not be reported
    meta, shapes, outs = _run(
        tmp_path,
        meta,
        (16, 16),
        lambda f: [ops.topk(ops.transpose(f, [0, 3, 1, 2]), 1, 1, "max", "none", "i32").output(1)],
        image,
    )
    assert shapes == [(1, 1, 16, 16)]
    # frame 32x64 (h, w): scale 0.25, image 16x8, 4 padding rows above and below
    found = _decode(meta, shapes, outs, (32, 64))
    assert [(d.label, d.score, d.box, d.area) for d in found] == [
        ("scratch", 1.0, (12, 0, 36, 4), 6 * 16),  # rows 4..5 of the map survive: 1 row * 6 cols
        ("dent", 1.0, (4, 24, 12, 32), 4 * 16),
    ]


def test_segmentation_without_ok_label_uses_first_label_as_background(tmp_path: Path) -> None:
    """With no ok_labels, labels[0] is the background and produces no region."""
    meta = _meta(OutputLayout.SEG_LOGITS, ["background", "scratch", "dent"], (16, 16))
    meta, shapes, outs = _run(
        tmp_path, meta, (16, 16), lambda f: [ops.transpose(f, [0, 3, 1, 2]).output(0)], _seg_image()
    )
    assert sorted(d.label for d in _decode(meta, shapes, outs, (16, 16))) == ["dent", "dent", "scratch"]


def test_segmentation_wrong_class_count_refused(tmp_path: Path) -> None:
    """SEG_LOGITS with C != len(labels) is refused at load time."""
    meta = _meta(OutputLayout.SEG_LOGITS, ["ok", "scratch"], (16, 16))
    meta, shapes, _ = _run(tmp_path, meta, (16, 16), lambda f: [ops.transpose(f, [0, 3, 1, 2]).output(0)], _seg_image())
    with pytest.raises(ModelError, match=r"\[1, C, H, W\] with C = len\(labels\) = 2 .* found \[1, 3, 16, 16\]"):
        build_postprocessor(meta, shapes)


# ---------------------------------------------------------------------------- anomaly


def _anomaly_graph(f: Any) -> list[Any]:
    """Map = channel 0 / 255 as [1,1,H,W]; score = max of the map as [1] (score output first)."""
    amap = ops.divide(ops.transpose(ops.slice(f, [0], [1], [1], [3]), [0, 3, 1, 2]), np.float32(255))
    score = ops.reduce_max(amap, [1, 2, 3], keep_dims=False)
    return [score.output(0), amap.output(0)]


def test_anomaly_map_and_score_regions_above_half(tmp_path: Path) -> None:
    """ANOMALY_MAP_SCORE: regions >= 0.5 (Anomalib boundary) with peak score; letterbox padding ignored."""
    meta = _meta(OutputLayout.ANOMALY_MAP_SCORE, [], (16, 16), resize=ResizeMode.LETTERBOX)
    image = np.zeros((16, 16, 3), np.uint8)
    image[6:8, 2:6, 0] = 200  # region 1, peak 200/255
    image[7, 3, 0] = 250
    image[9:11, 10:12, 0] = 128  # region 2: 128/255 = 0.502 >= 0.5
    image[5:7, 14:16, 0] = 127  # 0.498: below the boundary
    image[1, 1, 0] = 255  # in the letterbox padding (rows 0..3): ignored
    meta, shapes, outs = _run(tmp_path, meta, (16, 16), _anomaly_graph, image)
    assert shapes == [(1,), (1, 1, 16, 16)]
    # frame 16x32 (h, w): scale 0.5 -> 16x8 image, 4 padding rows above and below; x2, y: (y - 4) * 2
    found = _decode(meta, shapes, outs, (16, 32))
    assert [(d.label, round(d.score, 3), d.box, d.area) for d in found] == [
        (ANOMALY_LABEL, round(250 / 255, 3), (4, 4, 12, 8), 8 * 4),
        (ANOMALY_LABEL, round(128 / 255, 3), (20, 10, 24, 14), 4 * 4),
    ]


def test_anomaly_score_only_whole_frame(tmp_path: Path) -> None:
    """ANOMALY_SCORE: one whole-frame 'anomaly' at or above the threshold, nothing below it."""
    meta = _meta(OutputLayout.ANOMALY_SCORE, [], (8, 8))

    def graph(f: Any) -> list[Any]:
        return [ops.divide(ops.reduce_max(f, [0, 1, 2, 3], keep_dims=True), np.float32(255)).output(0)]

    hot = np.full((8, 8, 3), 153, np.uint8)  # 0.6
    meta, shapes, outs = _run(tmp_path, meta, (8, 8), graph, hot)
    assert shapes == [(1, 1, 1, 1)]
    decode = build_postprocessor(meta, shapes)
    assert decode(outs, (480, 640)) == [Detection(ANOMALY_LABEL, pytest.approx(0.6), None)]
    assert decode([np.array([0.49], np.float32)], (480, 640)) == []


def test_anomaly_map_only_uses_map_max_when_no_region(tmp_path: Path) -> None:
    """ANOMALY_MAP with a user threshold: regions above it; an all-low map gives no finding."""
    meta = _meta(OutputLayout.ANOMALY_MAP, [], (16, 16), anomaly_threshold=0.3)
    image = np.zeros((16, 16, 3), np.uint8)
    image[0:4, 0:4, 0] = 100  # 0.39
    meta, shapes, outs = _run(tmp_path, meta, (16, 16), lambda f: _anomaly_graph(f)[1:], image)
    decode = build_postprocessor(meta, shapes)
    assert [(d.box, d.area) for d in decode(outs, (16, 16))] == [((0, 0, 4, 4), 16)]
    assert decode([np.zeros((1, 1, 16, 16), np.float32)], (16, 16)) == []


def test_anomaly_layout_mismatch_refused(tmp_path: Path) -> None:
    """A map-and-score layout on a single-output IR is refused naming what was expected."""
    meta = _meta(OutputLayout.ANOMALY_MAP_SCORE, [], (16, 16))
    meta, shapes, _ = _run(tmp_path, meta, (16, 16), lambda f: _anomaly_graph(f)[1:], np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(
        ModelError, match=r"two outputs: a \[1, 1, H, W\] map and a \[1\] score .* found \[1, 1, 16, 16\]"
    ):
        build_postprocessor(meta, shapes)


# ---------------------------------------------------------------------------- geometry


@pytest.mark.parametrize(
    ("resize", "frame_hw", "expected"),
    [
        (ResizeMode.STRETCH, (480, 640), (10.0, 7.5, 0.0, 0.0)),
        (ResizeMode.LETTERBOX, (480, 640), (10.0, 10.0, 0.0, -80.0)),
        # 640x480 -> round(85.33) x 64 = 85 x 64, 21 columns cut: 10 on the left
        (ResizeMode.CROP, (480, 640), (640 / 85, 7.5, 10 * 640 / 85, 0.0)),
        # 403x301 -> 64 x round(47.8) = 64 x 48, (64 - 48) // 2 = 8 rows of padding on top
        (ResizeMode.LETTERBOX, (301, 403), (403 / 64, 301 / 48, 0.0, -8 * 301 / 48)),
    ],
)
def test_input_to_frame_affine(resize: ResizeMode, frame_hw: tuple[int, int], expected: tuple[float, ...]) -> None:
    """The documented input->frame maps for stretch, centred letterbox and centre crop (64x64 input)."""
    pre = Preprocessing(input_width=64, input_height=64, resize=resize)
    assert input_to_frame(pre, frame_hw) == pytest.approx(expected)


@pytest.mark.parametrize("resize", list(ResizeMode))
def test_regions_come_back_through_the_converters_preprocessing(tmp_path: Path, resize: ResizeMode) -> None:
    """An IR whose resize is built by convert.preprocess.embed: a rectangle painted in an odd-sized
    frame is found at the same place in frame pixels (within one network pixel)."""
    from convert.preprocess import embed

    pre = Preprocessing(
        input_width=64, input_height=64, color="BGR", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), resize=resize
    )
    identity = tiny_model(
        lambda x: [ops.add(x, ops.constant(np.zeros((1,), np.float32)))],
        input_shape=(1, 3, 64, 64),
        input_type=ov.Type.f32,
    )
    model = embed(identity, pre)  # the network's input itself is the per-class score map
    meta = IRMeta(
        task="segmentation",
        output_layout=OutputLayout.SEG_LOGITS,
        labels=("ok", "scratch", "dent"),
        ok_labels=("ok",),
        preprocessing=pre,
    )
    write_rt_info(model, meta)
    ov.save_model(model, tmp_path / "model.xml")
    compiled = CORE.compile_model(tmp_path / "model.xml", "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    frame = np.zeros((301, 403, 3), np.uint8)
    frame[..., 0] = 100
    frame[60:180, 100:220, 1] = 200  # "scratch": x 100..220, y 60..180
    outputs = [np.asarray(compiled(frame[None])[0])]
    found = build_postprocessor(meta, output_shapes(compiled))(outputs, frame.shape[:2])
    assert [d.label for d in found] == ["scratch"]
    kx, ky, _, _ = input_to_frame(pre, (301, 403))
    box = found[0].box
    assert box is not None
    assert np.abs(np.array(box) - np.array([100, 60, 220, 180])).max() <= max(kx, ky)
    assert found[0].area == pytest.approx(120 * 120, rel=0.15)


def test_dynamic_map_size_is_read_per_frame(tmp_path: Path) -> None:
    """An IR whose seg output is [1, C, ?, ?] is accepted (output_shapes gives -1) and decoded at each frame's size."""
    meta = _meta(OutputLayout.SEG_LOGITS, ["ok", "scratch", "dent"], (16, 16), ok_labels=("ok",))
    tiny_ir(tmp_path / "model.xml", lambda f: [ops.transpose(f, [0, 3, 1, 2])], meta=meta)
    compiled = CORE.compile_model(tmp_path / "model.xml", "CPU")
    assert output_shapes(compiled) == [(1, 3, -1, -1)]
    decode = build_postprocessor(meta, output_shapes(compiled))
    for hw in ((16, 16), (24, 40)):
        image = np.zeros((*hw, 3), np.uint8)
        image[..., 0] = 10
        image[4:8, 5:9, 2] = 20  # a 4x4 dent
        found = decode([np.asarray(compiled(image[None])[0])], (16, 16))  # as if the IR had stretched
        sy, sx = 16 / hw[0], 16 / hw[1]
        assert [(d.label, d.box) for d in found] == [
            ("dent", (round(5 * sx), round(4 * sy), round(9 * sx), round(8 * sy)))
        ]


def test_dimension_left_dynamic_by_the_ir_is_checked_per_frame() -> None:
    """A YOLOv8 head whose 4+C is an interval in the IR ([1, 4.., N]) loads; a wrong row count at run time
    is a ModelError (an ERROR verdict), never a silent mis-decode."""
    meta = _meta(OutputLayout.YOLOV8, ["screw", "nut"], (64, 64))
    decode = build_postprocessor(meta, [(1, -1, 64)])
    good = np.zeros((1, 6, 64), np.float32)
    good[0, :4, 0] = (32, 32, 8, 8)
    good[0, 5, 0] = 0.9
    assert decode([good], (64, 64)) == [Detection("nut", pytest.approx(0.9), (28, 28, 36, 36))]
    with pytest.raises(ModelError, match=r"YOLOv8 output has 7 rows, expected 4\+2"):
        decode([np.zeros((1, 7, 64), np.float32)], (64, 64))
