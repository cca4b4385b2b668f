"""``inspect`` and ``list``: what an IR is (ours or anyone's) and what the store holds."""

from __future__ import annotations

import json
from pathlib import Path

from ovedge.errors import ModelError, openvino_message
from ovedge.irmeta import Manifest, read_model_info, read_rt_info
from ovedge.store import MANIFEST, MODEL_XML, ModelStore


def _locate(path: Path) -> tuple[Path, Path | None]:
    """(model.xml, manifest.json or None) for an xml, a version folder or a model folder."""
    if path.is_file():
        if path.suffix != ".xml":
            raise ModelError(f"{path} is not an OpenVINO IR (.xml); give model.xml or its folder")
        manifest = path.parent / MANIFEST
        return path, manifest if manifest.is_file() else None
    if (path / MODEL_XML).is_file():
        manifest = path / MANIFEST
        return path / MODEL_XML, manifest if manifest.is_file() else None
    if path.is_dir():
        store = ModelStore(path.parent)
        if store.versions(path.name):
            version = store.resolve(path.name)
            return version.xml, version.path / MANIFEST
    raise ModelError(f"{path}: no OpenVINO IR there (expected model.xml, a version folder or a model folder)")


def describe(path: Path) -> str:
    import openvino as ov

    xml, manifest_path = _locate(path)
    try:
        model = ov.Core().read_model(str(xml))
    except RuntimeError as exc:
        raise ModelError(f"{xml} cannot be read by OpenVINO: {openvino_message(exc)}") from exc
    lines = [f"IR        {xml}"]
    for kind, ports in (("input", model.inputs), ("output", model.outputs)):
        for i, port in enumerate(ports):
            names = ",".join(sorted(port.get_names())) or "-"
            lines.append(f"{kind} {i}   {names} {port.get_partial_shape()} {port.get_element_type().get_type_name()}")
    weight_types = sorted(
        {op.get_output_element_type(0).get_type_name() for op in model.get_ops() if op.get_type_name() == "Constant"}
    )
    has_fq = any(op.get_type_name() == "FakeQuantize" for op in model.get_ops())
    lines.append(f"weights   {', '.join(weight_types)}{' + FakeQuantize (INT8)' if has_fq else ''}")
    try:
        meta = read_rt_info(model, source=str(xml))
    except ModelError:
        info = read_model_info(model)
        lines.append("ovedge    no ovedge metadata (not converted by ovedge-convert)")
        for key, value in sorted(info.items()):
            lines.append(f"  model_info.{key} = {value}")
    else:
        pre = meta.preprocessing
        lines += [
            f"task      {meta.task.value} ({meta.output_layout.value})",
            f"labels    {', '.join(meta.labels)}" + (f"  (ok: {', '.join(meta.ok_labels)})" if meta.ok_labels else ""),
            f"input     {pre.input_width}x{pre.input_height} {pre.color} resize={pre.resize.value} "
            f"mean={list(pre.mean)} std={list(pre.std)} embedded={pre.embedded}",
        ]
    if manifest_path is not None:
        manifest = Manifest.from_json(manifest_path.read_text(encoding="utf-8"), source=str(manifest_path))
        lines.append(
            f"version   {manifest.name} v{manifest.version}, {manifest.precision}, created {manifest.created_utc}"
        )
        src = manifest.source
        if src is not None:
            lines.append(f"source    {src.path} ({src.format}) sha256 {src.sha256[:12]}")
        if manifest.parity:
            lines.append("parity    " + json.dumps(manifest.parity, sort_keys=True))
        gold = manifest.golden
        if gold is not None:
            lines.append(f"golden    {gold.input} -> {gold.outputs} (atol {gold.atol})")
    return "\n".join(lines)


def list_store(root: Path) -> str:
    store = ModelStore(root)
    names = store.names()
    if not names:
        return f"no models in {root}"
    rows = [("name", "version", "precision", "task", "parity", "created")]
    for name in names:
        for version in store.versions(name):
            manifest = store.resolve(name, version).manifest
            agreement = manifest.parity.get("agreement")
            rows.append(
                (
                    name,
                    str(version),
                    manifest.precision,
                    manifest.meta.task.value,
                    f"{agreement:.2%}" if isinstance(agreement, float | int) else "-",
                    manifest.created_utc,
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
