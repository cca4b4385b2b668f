"""Shared test factories: tiny OpenVINO IRs built from opset ops (no torch), versions in a real store,
and results as the decide thread hands them to the spool.

Import them as ``from tests.factories import ...`` (``tests/conftest.py`` puts the repository on
the path), or take the ``tiny_ir`` fixture.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import openvino.opset13 as ops

from daemon.result import Result, Verdict
from ovedge.irmeta import IRMeta, write_rt_info
from ovedge.signing import sign_manifest
from ovedge.store import ModelStore, ModelVersion, VersionDraft

Graph = Callable[[Any], Sequence[Any]]


def tiny_model(
    graph: Graph,
    *,
    input_shape: Sequence[int] = (1, -1, -1, 3),
    input_type: ov.Type = ov.Type.u8,
    meta: IRMeta | None = None,
    name: str = "tiny",
) -> ov.Model:
    """A model taking one ``input_shape`` tensor (u8 NHWC frames of any size by default) whose
    outputs are ``graph(x)``, ``x`` being the input as f32; ``meta`` written into its rt_info."""
    param = ops.parameter(ov.PartialShape(list(input_shape)), input_type, name="frame")
    x = param if input_type == ov.Type.f32 else ops.convert(param, "f32")
    outputs = [out.output(0) if hasattr(out, "output") else out for out in graph(x)]
    model = ov.Model(outputs, [param], name)
    if meta is not None:
        write_rt_info(model, meta)
    return model


def tiny_ir(xml: Path, graph: Graph, **kwargs: Any) -> Path:
    """:func:`tiny_model` saved as ``xml`` (and its .bin); returns ``xml``."""
    ov.save_model(tiny_model(graph, **kwargs), xml)
    return xml


def constant(x: Any, value: np.ndarray) -> Any:
    """A constant output that still depends on the input (so nothing is a dangling parameter)."""
    rank = len(x.output(0).get_partial_shape()) if hasattr(x, "output") else len(x.get_partial_shape())
    zero = ops.multiply(ops.reduce_sum(x, list(range(rank)), keep_dims=False), np.float32(0))
    if value.dtype != np.float32:
        return ops.convert(ops.add(ops.constant(value.astype(np.float32)), zero), "i64").output(0)
    return ops.add(ops.constant(value), zero).output(0)


def channel_classifier(weights: Sequence[float]) -> Graph:
    """Logits = the frame's channel means times ``weights``: a classifier whose answer a test picks."""

    def graph(x: Any) -> list[Any]:
        means = ops.reduce_mean(x, [1, 2])
        return [ops.multiply(means, ops.constant(np.array([weights], np.float32)))]

    return graph


def add_version(
    store: ModelStore,
    name: str,
    write: Callable[[Path], VersionDraft],
    *,
    sign_with: Path | None = None,
) -> ModelVersion:
    """A new version of ``name`` written by the store's own writer: ``write(staged)`` puts the files
    into the staging folder and returns the manifest draft; signed with ``sign_with`` if given."""
    with store.staging(name) as staged:
        draft = write(staged)
        key = sign_with
        sign = None if key is None else (lambda manifest: sign_manifest(manifest, key))
        return store.add_version(name, staged, draft, sign=sign)


def result_draft(index: int, **changes: Any) -> Result:
    """The result of frame ``index`` as the decide thread hands it over (``seq`` 0: the spool numbers
    it): station s1, camera cam0, an 8 x 8 OK frame judged by model demo v1 on CPU; ``changes``
    replace fields."""
    draft = Result(
        seq=0, station="s1", camera="cam0", time=1_767_225_600.0, frame_index=index, frame_ref=None,
        captured=1_767_225_600.0, width=8, height=8, model_name="demo", model_version=1, device="CPU",
        verdict=Verdict.OK, defects=(), inference_ms=1.0, capture_to_result_ms=2.0,
    )
    return draft._replace(**changes)


def result_drafts(n: int, **changes: Any) -> list[Result]:
    """:func:`result_draft` for frames 0 .. n-1."""
    return [result_draft(i, **changes) for i in range(n)]
