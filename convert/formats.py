"""Which kind of file a checkpoint is, told from its bytes (never from trust in its name)."""

from __future__ import annotations

import zipfile
from enum import StrEnum
from pathlib import Path

from ovedge.errors import CheckpointError


class SourceFormat(StrEnum):
    TORCHSCRIPT = "torchscript"  # torch.jit.save
    EXPORT = "export"  # torch.export.save (.pt2)
    ONNX = "onnx"
    OPENVINO = "openvino_ir"  # an IR made elsewhere (e.g. exported by Anomalib): re-packaged
    TORCH_SAVE = "torch_save"  # torch.save of something: state_dict, Lightning, pickled module
    # refined after loading a TORCH_SAVE file
    STATE_DICT = "state_dict"
    LIGHTNING = "lightning"
    PICKLED_MODULE = "pickled_module"


def sniff(path: Path) -> SourceFormat:
    """Tell the container format of ``path``; refined for torch.save files by the loader."""
    if not path.exists():
        raise CheckpointError(what=f"checkpoint {path}", problem="does not exist")
    if not path.is_file():
        raise CheckpointError(what=f"checkpoint {path}", problem="is not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(what=f"checkpoint {path}", problem="is empty (0 bytes)", detail="save it again")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile as exc:
            raise CheckpointError(what=f"checkpoint {path}", problem="is a damaged zip archive", detail=exc) from exc
        tails = {name.split("/", 1)[1] if "/" in name else name for name in names}
        if "archive_format" in tails or any(t.startswith("models/") and t.endswith(".json") for t in tails):
            return SourceFormat.EXPORT
        if "constants.pkl" in tails and any(t.startswith("code/") for t in tails):
            return SourceFormat.TORCHSCRIPT
        if "data.pkl" in tails:
            return SourceFormat.TORCH_SAVE
        raise CheckpointError(
            what=f"checkpoint {path}",
            problem="is a zip archive but not one PyTorch writes "
            "(expected torch.save, torch.jit.save or torch.export.save)",
        )
    with path.open("rb") as fh:
        head = fh.read(2)
    if head[:1] == b"\x80":  # a legacy (non-zip) torch.save pickle
        return SourceFormat.TORCH_SAVE
    if head[:1] == b"<" and _looks_like_ir(path):
        return SourceFormat.OPENVINO
    if path.suffix.lower() == ".onnx" or _looks_like_onnx(path):
        return SourceFormat.ONNX
    raise CheckpointError(
        what=f"checkpoint {path}",
        problem="is not a format ovedge-convert reads",
        detail="give a TorchScript file (torch.jit.save), a torch.export program (.pt2), an ONNX model (.onnx), "
        "a state_dict or Lightning .ckpt (torch.save), or an OpenVINO IR (.xml with its .bin)",
    )


def _looks_like_ir(path: Path) -> bool:
    with path.open("rb") as fh:
        start = fh.read(512)
    return b"<net" in start


def _looks_like_onnx(path: Path) -> bool:
    # An ONNX ModelProto starts with field 1 (ir_version, varint): tag byte 0x08.
    with path.open("rb") as fh:
        return fh.read(1) == b"\x08"
