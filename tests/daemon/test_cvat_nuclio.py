"""CVAT auto-annotation: the shape mapping, the generated Nuclio function run on nuclio-sdk's test
platform on a real converted model, and the same answers from the daemon's POST /cvat."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import openvino.opset13 as ops
import pytest
import yaml
from fastapi.testclient import TestClient

from daemon.config.http import HttpConfig
from daemon.cvat import CvatDetector, CvatModelFolderError, cvat_shapes
from daemon.http import create_app
from daemon.nuclio import NuclioSourceError, write_function
from ovedge.irmeta import IRMeta, Preprocessing
from ovedge.layouts import Detection
from ovedge.store import ModelStore, VersionDraft
from tests.daemon.http_parts import DemoView, load_demo, png_bytes, synthetic_jpeg
from tests.factories import add_version, tiny_ir

IMAGES = [synthetic_jpeg(i, seed=11, size=144) for i in range(6)]

RUN_IN_FUNCTION = """
import base64, json, sys
import nuclio_sdk
import nuclio_sdk.test
import main

platform = nuclio_sdk.test.Platform()
answers = []
for line in sys.stdin:
    request = json.loads(line)
    body = request["body"] if request["as_dict"] else json.dumps(request["body"]).encode()
    event = nuclio_sdk.Event(body=body, content_type="application/json", method="POST", path="/")
    response = platform.call_handler(main.handler, event)
    answers.append({"status": response.status_code, "body": json.loads(response.body),
                    "content_type": response.content_type})
print(json.dumps({"answers": answers, "cvat_module": sys.modules["daemon.cvat"].__file__}))
"""


@pytest.fixture(scope="module")
def function_dir(demo_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fn") / "ovedge-demo"
    done = subprocess.run([sys.executable, "-m", "daemon.nuclio", str(demo_store / "demo" / "1"), str(out)],
                          capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"wrote {out / 'function.yaml'}" in done.stdout
    return out


def _requests(threshold: float) -> list[dict[str, object]]:
    return [{"image": base64.b64encode(data).decode(), "threshold": threshold} for data in IMAGES]


def test_shapes_by_kind_of_finding() -> None:
    """Boxes -> rectangle [xtl, ytl, xbr, ybr]; regions (box + area) -> polygon of 4 corners;
    whole-frame findings -> tag without points; below the threshold -> left out; best first."""
    found = [
        Detection("scratch", 0.62, (10, 20, 30, 40)),
        Detection("dent", 0.91, (1, 2, 5, 9), area=17),
        Detection("anomaly", 0.75, None),
        Detection("spot", 0.2, (0, 0, 4, 4)),
    ]
    assert cvat_shapes(found, 0.5) == [
        {"confidence": 0.91, "label": "dent", "points": [1, 2, 5, 2, 5, 9, 1, 9], "type": "polygon"},
        {"confidence": 0.75, "label": "anomaly", "points": [], "type": "tag"},
        {"confidence": 0.62, "label": "scratch", "points": [10, 20, 30, 40], "type": "rectangle"},
    ]
    assert [s["label"] for s in cvat_shapes(found, 0.0)] == ["dent", "anomaly", "scratch", "spot"]


def test_function_yaml_has_what_cvat_reads(function_dir: Path, demo_store: Path) -> None:
    """function.yaml: a detector for the openvino framework, every label with its id in spec,
    the handler main:handler; the folder holds main.py, the model and the sources it imports."""
    doc = yaml.safe_load((function_dir / "function.yaml").read_text(encoding="utf-8"))
    notes = doc["metadata"]["annotations"]
    assert notes["type"] == "detector"
    assert notes["framework"] == "openvino"
    spec = json.loads(notes["spec"])
    model = load_demo(demo_store)
    assert [(s["id"], s["name"]) for s in spec] == list(enumerate(model.meta.labels))
    assert {s["type"] for s in spec} == {"tag"}
    assert doc["spec"]["handler"] == "main:handler"
    assert doc["metadata"]["name"] == "ovedge-demo-v1"
    assert (function_dir / "model" / "demo" / "1" / "model.xml").is_file()
    assert (function_dir / "daemon" / "cvat.py").is_file()
    assert not (function_dir / "daemon" / "http").exists()


def test_function_on_the_nuclio_test_platform_answers_like_post_cvat(function_dir: Path, demo_store: Path) -> None:
    """The generated main.py, run by nuclio_sdk.test.Platform().call_handler in a fresh interpreter
    that sees only the function folder, gives for each image exactly the list POST /cvat gives."""
    lines = [json.dumps({"body": body, "as_dict": i % 2 == 0}) for i, body in enumerate(_requests(0.0))]
    bad = json.dumps({"body": {"image": "not base64!", "threshold": 0.5}, "as_dict": True})
    done = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, '.'); exec({RUN_IN_FUNCTION!r})"],
        input="\n".join([*lines, bad]) + "\n", capture_output=True, text=True, cwd=function_dir,
        check=False, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(result["cvat_module"]).resolve().is_relative_to(function_dir.resolve())  # the vendored copy
    *answers, refused = result["answers"]
    assert refused["status"] == 400
    assert "not valid base64" in refused["body"]["detail"]

    client = TestClient(create_app(DemoView(load_demo(demo_store)), HttpConfig(enabled=True)))
    for request, answer in zip(_requests(0.0), answers, strict=True):
        assert answer["status"] == 200
        assert answer["content_type"] == "application/json"
        from_daemon = client.post("/cvat", json=request)
        assert from_daemon.status_code == 200
        assert answer["body"] == from_daemon.json()
        assert len(answer["body"]) == 1  # the classifier's top label as a tag
        assert answer["body"][0]["type"] == "tag"
    labels = {a["body"][0]["label"] for a in answers}
    assert len(labels) > 1  # the images are not all judged alike: the answers carry information


def _seg_store(root: Path) -> Path:
    """A store with one segmentation version: logits = the frame's channels (ok, scratch, dent)."""
    meta = IRMeta(task="segmentation", output_layout="seg_logits", labels=("ok", "scratch", "dent"),
                  ok_labels=("ok",), preprocessing=Preprocessing(input_width=32, input_height=32))

    def write(staged: Path) -> VersionDraft:
        tiny_ir(staged / "model.xml", lambda x: [ops.transpose(x, [0, 3, 1, 2])], meta=meta)
        return VersionDraft(meta=meta)

    return add_version(ModelStore(root), "seg", write).path


def _seg_image() -> bytes:
    image = np.zeros((48, 64, 3), np.uint8)
    image[..., 0] = 10
    image[5:20, 4:9, 1] = 40  # an L-shaped scratch ...
    image[15:20, 4:30, 1] = 40
    image[30:40, 40:52, 2] = 40  # ... and a dent
    return png_bytes(image)


def test_segmentation_regions_are_polygons_with_their_outline(tmp_path: Path) -> None:
    """A segmentation model's regions come back as polygons that follow the region (the L keeps its
    corners), identically from the Nuclio function and from POST /cvat; spec lists the defect labels."""
    version_dir = _seg_store(tmp_path / "store")
    fn = tmp_path / "fn"
    write_function(version_dir, fn)
    doc = yaml.safe_load((fn / "function.yaml").read_text(encoding="utf-8"))
    spec = json.loads(doc["metadata"]["annotations"]["spec"])
    assert spec == [{"id": 0, "name": "scratch", "type": "polygon"}, {"id": 1, "name": "dent", "type": "polygon"}]

    request = {"image": base64.b64encode(_seg_image()).decode(), "threshold": 0.5}
    done = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, '.'); exec({RUN_IN_FUNCTION!r})"],
        input=json.dumps({"body": request, "as_dict": True}) + "\n", capture_output=True, text=True, cwd=fn,
        check=False, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (answer,) = json.loads(done.stdout.strip().splitlines()[-1])["answers"]
    assert answer["status"] == 200

    detector = CvatDetector.load(fn / "model")
    client = TestClient(create_app(DemoView(detector.model), HttpConfig(enabled=True)))
    from_daemon = client.post("/cvat", json=request).json()
    assert answer["body"] == from_daemon
    shapes = {s["label"]: s for s in from_daemon}
    assert set(shapes) == {"scratch", "dent"}
    assert {s["type"] for s in from_daemon} == {"polygon"}
    dent = sorted(zip(shapes["dent"]["points"][0::2], shapes["dent"]["points"][1::2], strict=True))
    assert dent == [(40, 30), (40, 39), (51, 30), (51, 39)]  # the block's corner pixels
    ell = list(zip(shapes["scratch"]["points"][0::2], shapes["scratch"]["points"][1::2], strict=True))
    assert len(ell) >= 6  # an L, not its bounding box
    assert all(4 <= x <= 29 and 5 <= y <= 19 for x, y in ell)
    assert (29, 15) in ell
    assert (8, 5) in ell


def test_handler_in_process_and_threshold(function_dir: Path) -> None:
    """In this interpreter too: init_context loads once, a threshold above the top score yields []."""
    import nuclio_sdk
    import nuclio_sdk.test

    sys.path.insert(0, str(function_dir))
    try:
        import main  # type: ignore[import-not-found]  # the generated function's module
    finally:
        sys.path.remove(str(function_dir))
    platform = nuclio_sdk.test.Platform()
    detectors: list[object] = []

    def look(context: Any) -> Any:  # the handler's own context, as init_context left it
        detectors.append(context.user_data.detector)
        return context

    first = platform.call_handler_with_context_mutation(
        main.handler, nuclio_sdk.Event(body=_requests(0.0)[0]), look)
    top = json.loads(first.body)[0]["confidence"]
    above = platform.call_handler_with_context_mutation(
        main.handler, nuclio_sdk.Event(body={**_requests(0.0)[0], "threshold": top + 1e-3}), look)
    assert json.loads(above.body) == []
    assert isinstance(detectors[0], CvatDetector) and detectors[1] is detectors[0]  # loaded once


def test_bad_sources_are_one_line_errors(tmp_path: Path, demo_store: Path) -> None:
    """A folder without a manifest, a non-empty output folder, and a function model folder that
    does not hold exactly one model are each refused with the path in the message."""
    with pytest.raises(NuclioSourceError, match=r"no manifest\.json"):
        write_function(tmp_path, tmp_path / "out")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x", encoding="utf-8")
    with pytest.raises(NuclioSourceError, match="not empty"):
        write_function(demo_store / "demo" / "1", busy)
    with pytest.raises(CvatModelFolderError, match=r"exactly one model .* found: none"):
        CvatDetector.load(tmp_path / "empty")
    done = subprocess.run([sys.executable, "-m", "daemon.nuclio", str(tmp_path), str(tmp_path / "o")],
                          capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith("ovedge-nuclio: error: ")
    assert "Traceback" not in done.stderr
