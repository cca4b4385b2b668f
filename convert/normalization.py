"""Where the input normalisation comes from: never guessed.

PyTorch does not know how a network's inputs were normalised in training, so parity cannot catch
a wrong mean/std: the IR would agree with PyTorch and still call every part NG. The converter
therefore takes the normalisation from exactly one of

* ``--mean r,g,b --std r,g,b`` (0-255 pixel units, model channel order);
* a named preset, ``--norm imagenet`` or ``--norm unit`` (0..1: mean 0, std 255);
* the checkpoint, where the training code recorded it: Lightning ``hyper_parameters`` ``mean`` and
  ``std`` or ``normalization``, or a ``normalization`` / ``mean`` + ``std`` entry saved beside the
  state_dict. ``normalization`` is a mapping with ``mean`` and ``std``, or a preset name.
  Recorded values whose every number is <= 1 are taken in 0-1 units (torchvision's ``Normalize``
  convention) and multiplied by 255; the summary and the manifest say so.

Options given on the command line win over the checkpoint. Nothing given and nothing recorded is
:class:`NormalizationMissingError`. The chosen source is written to the manifest as
``meta.preprocessing.normalization_source``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from ovedge.errors import ConvertError

__all__ = [
    "PRESETS",
    "NormPreset",
    "Normalization",
    "NormalizationMissingError",
    "recorded_normalization",
    "resolve_normalization",
]

Triple = tuple[float, float, float]


class NormPreset(StrEnum):
    """``--norm``: a named normalisation."""

    IMAGENET = "imagenet"
    UNIT = "unit"


PRESETS: Final[dict[NormPreset, tuple[Triple, Triple]]] = {
    NormPreset.IMAGENET: ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),
    NormPreset.UNIT: ((0.0, 0.0, 0.0), (255.0, 255.0, 255.0)),
}


@dataclass(frozen=True, slots=True)
class Normalization:
    """Mean and std in 0-255 pixel units, model channel order, and where they came from."""

    mean: Triple
    std: Triple
    source: str


class NormalizationMissingError(ConvertError):
    """Neither the command line nor the checkpoint says how the network's inputs were normalised."""

    def __init__(self, checkpoint: Path) -> None:
        self.checkpoint = checkpoint
        super().__init__(
            f"{checkpoint}: the input normalisation is not known and is not guessed (a wrong one passes "
            "parity and then misjudges every part): give --mean r,g,b --std r,g,b in 0-255 units as in "
            "training, or --norm imagenet|unit (unit = 0..1 inputs), or record `mean`/`std` in the checkpoint"
        )


class NormalizationConflictError(ConvertError):
    """The command line gives the normalisation twice, or half of it."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"{problem}: give either --mean and --std together, or --norm imagenet|unit")


class RecordedNormalizationError(ConvertError):
    """The checkpoint records a normalisation that cannot be read as three numbers."""

    def __init__(self, checkpoint: Path, where: str, value: object) -> None:
        self.checkpoint, self.where = checkpoint, where
        super().__init__(
            f"{checkpoint}: {where} = {str(value)[:60]!r} is not a preset name or three numbers per mean/std; "
            "fix it or give --mean/--std (or --norm) on the command line"
        )


def resolve_normalization(
    *,
    mean: Triple | None,
    std: Triple | None,
    norm: NormPreset | None,
    recorded: Normalization | None,
    checkpoint: Path,
) -> Normalization:
    """The normalisation to embed: the command line's, else the checkpoint's, else refuse."""
    if norm is not None and (mean is not None or std is not None):
        raise NormalizationConflictError(f"--norm {norm.value} and --mean/--std both given")
    if (mean is None) != (std is None):
        raise NormalizationConflictError("--mean without --std" if std is None else "--std without --mean")
    if mean is not None and std is not None:
        return Normalization(mean, std, "--mean/--std")
    if norm is not None:
        preset_mean, preset_std = PRESETS[norm]
        return Normalization(preset_mean, preset_std, f"--norm {norm.value}")
    if recorded is not None:
        return recorded
    raise NormalizationMissingError(checkpoint)


def recorded_normalization(
    checkpoint_dict: Mapping[str, Any], hparams: Mapping[str, Any], *, nested: bool, checkpoint: Path
) -> Normalization | None:
    """What the checkpoint records: ``hyper_parameters`` first, then entries beside the state_dict.

    ``nested`` is False when the checkpoint *is* the state_dict: its keys are then the network's
    own tensors (a buffer may well be called ``mean``) and are not read as a normalisation.
    """
    places: list[tuple[str, Mapping[str, Any]]] = [("hyper_parameters.", hparams)]
    if nested:
        places.append(("", checkpoint_dict))
    for prefix, where in places:
        if "normalization" in where:
            return _from_entry(where["normalization"], f"{prefix}normalization", checkpoint)
        if "mean" in where and "std" in where:
            label = f"{prefix}mean/{prefix}std"
            return _from_pair(where["mean"], where["std"], label, checkpoint)
    return None


def _from_entry(value: Any, where: str, checkpoint: Path) -> Normalization:
    if isinstance(value, str):
        try:
            preset = NormPreset(value.lower())
        except ValueError:
            raise RecordedNormalizationError(checkpoint, where, value) from None
        preset_mean, preset_std = PRESETS[preset]
        return Normalization(preset_mean, preset_std, f"checkpoint {where} ({preset.value})")
    if isinstance(value, Mapping) and "mean" in value and "std" in value:
        return _from_pair(value["mean"], value["std"], where, checkpoint)
    raise RecordedNormalizationError(checkpoint, where, value)


def _from_pair(mean: Any, std: Any, where: str, checkpoint: Path) -> Normalization:
    m, s = _triple(mean), _triple(std)
    if m is None or s is None:
        raise RecordedNormalizationError(checkpoint, where, mean if m is None else std)
    if any(v <= 0 for v in s):
        raise RecordedNormalizationError(checkpoint, where, std)
    source = f"checkpoint {where}"
    if max(*m, *s) <= 1.0:  # torchvision's Normalize works on 0..1 tensors
        m = (m[0] * 255.0, m[1] * 255.0, m[2] * 255.0)
        s = (s[0] * 255.0, s[1] * 255.0, s[2] * 255.0)
        source += " (0-1 units, x255)"
    return Normalization(m, s, source)


def _triple(value: Any) -> Triple | None:
    if hasattr(value, "tolist"):  # a tensor or an array
        value = value.tolist()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), float(value), float(value)
    if isinstance(value, list | tuple) and len(value) == 3 and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        return float(value[0]), float(value[1]), float(value[2])
    return None
