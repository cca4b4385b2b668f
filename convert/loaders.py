"""Load a checkpoint into something that can be converted and used as the parity reference.

torch is imported inside the functions: ``import convert.loaders`` stays cheap.
"""

from __future__ import annotations

import logging
import pickle
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convert.archs import build_arch
from convert.formats import SourceFormat, sniff
from convert.options import ConvertOptions
from ovedge.errors import ConvertError, openvino_message

log = logging.getLogger(__name__)

NESTED_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "weights", "ema")
_SHOW = 5  # names shown per kind of key mismatch


@dataclass(frozen=True, slots=True)
class Loaded:
    """A loaded checkpoint: a torch module (or an ONNX file) plus where it came from."""

    format: SourceFormat
    path: Path
    module: Any = None  # nn.Module / ScriptModule: the parity reference and conversion source
    exported: Any = None  # torch.export.ExportedProgram for .pt2
    onnx_path: Path | None = None
    ir: Any = None  # openvino.Model read from a foreign IR
    arch: str | None = None
    input_shape: tuple[int, ...] | None = None  # static [1,3,H,W] when the file declares one


def load_checkpoint(options: ConvertOptions) -> Loaded:
    path = options.checkpoint
    kind = sniff(path)
    if kind is SourceFormat.ONNX:
        return _load_onnx(path)
    if kind is SourceFormat.TORCHSCRIPT:
        return _load_torchscript(path)
    if kind is SourceFormat.EXPORT:
        return _load_export(path)
    if kind is SourceFormat.OPENVINO:
        return _load_openvino(path)
    return _load_torch_save(path, options)


def _load_openvino(path: Path) -> Loaded:
    """An IR made elsewhere (Anomalib's export, ovc): the reference is the IR itself, run as it came."""
    import openvino as ov

    if not path.with_suffix(".bin").is_file():
        raise ConvertError(f"OpenVINO IR {path} has no weights file {path.with_suffix('.bin').name} beside it")
    try:
        model = ov.Core().read_model(str(path))
    except RuntimeError as exc:
        raise ConvertError(f"OpenVINO IR {path} cannot be read: {openvino_message(exc)}") from exc
    if len(model.inputs) != 1:
        raise ConvertError(f"OpenVINO IR {path} has {len(model.inputs)} inputs; ovedge expects one image input")
    port = model.inputs[0]
    if port.get_element_type() != ov.Type.f32 or port.get_partial_shape().rank.get_length() != 4:
        raise ConvertError(
            f"OpenVINO IR {path} takes {port.get_element_type().get_type_name()} {port.get_partial_shape()}; "
            "expected an f32 [1,3,H,W] image input (is its preprocessing already embedded?)"
        )
    shape = None
    if port.get_partial_shape().is_static:
        shape = tuple(int(d) for d in port.get_shape())
    return Loaded(format=SourceFormat.OPENVINO, path=path, ir=model, input_shape=shape)


def _load_onnx(path: Path) -> Loaded:
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ConvertError(f"checkpoint {path} is not a readable ONNX model: {exc}") from exc
    check_external_data(proto, path)
    shape = None
    graph_inputs = [i for i in proto.graph.input if i.name not in {t.name for t in proto.graph.initializer}]
    if len(graph_inputs) != 1:
        raise ConvertError(f"ONNX model {path} has {len(graph_inputs)} inputs; ovedge expects one image input")
    dims = graph_inputs[0].type.tensor_type.shape.dim
    if all(d.HasField("dim_value") for d in dims):
        shape = tuple(int(d.dim_value) for d in dims)
    return Loaded(format=SourceFormat.ONNX, path=path, onnx_path=path, input_shape=shape)


def check_external_data(proto: Any, path: Path) -> None:
    """Refuse ONNX external-data references that point outside the model's folder."""
    folder = path.resolve().parent
    for tensor in proto.graph.initializer:
        if tensor.data_location != 1:  # 1 == TensorProto.EXTERNAL
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (folder / location).resolve()
        if not target.is_relative_to(folder):
            raise ConvertError(
                f"ONNX model {path}: tensor {tensor.name!r} keeps its data in {location!r}, outside the "
                f"model's folder {folder}; refusing to read it (move the data file beside the model)"
            )
        if not target.is_file():
            raise ConvertError(
                f"ONNX model {path}: external data file {location!r} of tensor {tensor.name!r} is missing"
            )


def _load_torchscript(path: Path) -> Loaded:
    import torch

    try:
        module = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
    except Exception as exc:
        raise ConvertError(f"TorchScript file {path} cannot be loaded: {openvino_message(exc)}") from exc
    module.eval()
    return Loaded(format=SourceFormat.TORCHSCRIPT, path=path, module=module)


def _load_export(path: Path) -> Loaded:
    import torch

    try:
        program = torch.export.load(str(path))
    except Exception as exc:
        raise ConvertError(f"torch.export program {path} cannot be loaded: {openvino_message(exc)}") from exc
    shape = None
    placeholders = [spec for spec in program.graph_signature.input_specs if spec.kind.name == "USER_INPUT"]
    if len(placeholders) != 1:
        raise ConvertError(f"torch.export program {path} takes {len(placeholders)} inputs; ovedge expects one")
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name == placeholders[0].arg.name:
            value = node.meta.get("val")
            if value is not None and all(isinstance(d, int) for d in value.shape):
                shape = tuple(int(d) for d in value.shape)
    return Loaded(format=SourceFormat.EXPORT, path=path, exported=program, module=program.module(), input_shape=shape)


def _load_torch_save(path: Path, options: ConvertOptions) -> Loaded:
    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        what = found.group(1) if found else "a Python object"
        if not options.trust_pickle:
            raise ConvertError(
                f"checkpoint {path} is a pickled Python object ({what}), not a plain state_dict: loading it "
                "would run code from the file, so it is refused by default (weights_only=True). "
                "If you trust the file, pass --trust-pickle; better, save model.state_dict() and give --arch"
            ) from exc
        obj = _load_trusted(path)
    except Exception as exc:
        raise ConvertError(f"checkpoint {path} cannot be read by torch.load: {openvino_message(exc)}") from exc
    if isinstance(obj, torch.nn.Module):
        obj.eval()
        return Loaded(format=SourceFormat.PICKLED_MODULE, path=path, module=obj)
    if not isinstance(obj, Mapping):
        raise ConvertError(
            f"checkpoint {path} holds a {type(obj).__name__}, not a state_dict, Lightning checkpoint or module"
        )
    fmt = SourceFormat.STATE_DICT
    hparams: Mapping[str, Any] = {}
    if "pytorch-lightning_version" in obj or ("state_dict" in obj and "hyper_parameters" in obj):
        fmt = SourceFormat.LIGHTNING
        raw = obj.get("hyper_parameters") or {}
        hparams = raw if isinstance(raw, Mapping) else {}
    state = _find_state_dict(obj, path)
    if options.arch is None:
        raise ConvertError(
            f"checkpoint {path} is a {fmt.value} (weights only, {len(state)} tensors): give the architecture "
            "with --arch package.module:ClassName (and --arch-kwargs JSON if it takes arguments)"
        )
    module = build_arch(options.arch, options.arch_kwargs, arch_path=options.arch_path, hparams=hparams)
    if not isinstance(module, torch.nn.Module):
        raise ConvertError(f"--arch {options.arch!r} built a {type(module).__name__}, not a torch.nn.Module")
    load_weights(module, state, path)
    module.eval()
    return Loaded(format=fmt, path=path, module=module, arch=options.arch)


def _load_trusted(path: Path) -> Any:
    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=False)
    except (AttributeError, ModuleNotFoundError) as exc:
        raise ConvertError(
            f"checkpoint {path} is a pickled module whose class cannot be imported here ({exc}); "
            "run from the project that defines it, or save model.state_dict() and give --arch"
        ) from exc


def _is_tensor_map(obj: Any) -> bool:
    import torch

    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _find_state_dict(obj: Mapping[str, Any], path: Path) -> dict[str, Any]:
    if _is_tensor_map(obj):
        return dict(obj)
    for key in NESTED_KEYS:
        inner = obj.get(key)
        if isinstance(inner, Mapping) and _is_tensor_map(inner):
            log.info("state_dict found under %r in %s", key, path)
            return dict(inner)
    keys = ", ".join(sorted(map(str, obj))[:8])
    raise ConvertError(
        f"checkpoint {path} is a dict without a state_dict (top-level keys: {keys}); "
        f"expected tensors at the top level or under one of {', '.join(NESTED_KEYS)}"
    )


def strip_prefix(state: Mapping[str, Any], wanted: Iterable[str]) -> dict[str, Any]:
    """Drop the prefix (``model.``, ``module.``, ``net.backbone.``...) that best matches ``wanted``."""
    targets = set(wanted)
    candidates = {""}
    for key in state:
        parts = key.split(".")
        candidates.update(".".join(parts[:i]) + "." for i in range(1, len(parts)))

    def score(prefix: str) -> int:
        return sum(1 for k in state if k.startswith(prefix) and k[len(prefix) :] in targets)

    best = max(sorted(candidates), key=lambda p: (score(p), -len(p)))
    if best:
        log.info("stripping the key prefix %r from the checkpoint", best)
        return {k[len(best) :]: v for k, v in state.items() if k.startswith(best)}
    return dict(state)


def load_weights(module: Any, state: Mapping[str, Any], path: Path) -> None:
    """Load ``state`` strictly; report missing/unexpected/mismatched keys by name, not as a traceback."""
    target = module.state_dict()
    state = strip_prefix(state, target.keys())
    missing = [k for k in target if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in target]
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs {tuple(target[k].shape)}"
        for k in target
        if k in state and tuple(state[k].shape) != tuple(target[k].shape)
    ]
    problems = []
    for label, names in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
        if names:
            shown = ", ".join(names[:_SHOW]) + (", ..." if len(names) > _SHOW else "")
            problems.append(f"{len(names)} {label} ({shown})")
    if problems:
        raise ConvertError(
            f"checkpoint {path} does not fit the architecture {type(module).__name__}: "
            + "; ".join(problems)
            + " -- check --arch and --arch-kwargs (checkpoint vs architecture shapes)"
        )
    module.load_state_dict(state, strict=False)

