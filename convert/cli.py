"""``ovedge-convert``: checkpoint in, verified IR version out. Also ``inspect`` and ``list``.

Kept import-light: torch, onnx and OpenVINO are imported only when a conversion or an inspection
actually runs, so ``--help`` and ``list`` answer at once.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from ovedge.errors import OvedgeError

PROG = "ovedge-convert"
SUBCOMMANDS = ("inspect", "list")


def _convert_parser() -> argparse.ArgumentParser:
    from convert.normalization import NormPreset
    from convert.options import Precision, TaskChoice
    from ovedge.about import VersionAction
    from ovedge.irmeta import ResizeMode

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Convert a PyTorch/ONNX checkpoint into a versioned OpenVINO IR with embedded "
        "preprocessing, metadata, a golden sample and proven parity.",
        epilog=f"other commands: `{PROG} inspect PATH` (metadata, inputs/outputs, parity of an IR), "
        f"`{PROG} list [--out DIR]` (the model store)",
    )
    parser.add_argument("--version", action=VersionAction)
    parser.add_argument("checkpoint", type=Path, help="TorchScript, .pt2, .onnx, state_dict .pt/.pth, Lightning .ckpt")
    parser.add_argument("--name", required=True, help="model name in the store")
    parser.add_argument("--out", type=Path, default=Path("ir_models"), help="model store root (default ir_models)")
    parser.add_argument("--arch", help="package.module:ClassName (or torchvision:<name>) for a state_dict")
    parser.add_argument("--arch-kwargs", default="{}", help="JSON object of --arch keyword arguments")
    parser.add_argument("--arch-path", type=Path, help="extra folder to import --arch from")
    parser.add_argument("--trust-pickle", action="store_true", help="allow a fully pickled nn.Module (runs its code)")
    parser.add_argument("--task", choices=[t.value for t in TaskChoice], default="auto")
    parser.add_argument("--labels", help="labels file (one a line) or a,b,c")
    parser.add_argument("--ok-labels", default="", help="labels meaning a good part, a,b (required for a classifier)")
    parser.add_argument("--no-ok-label", action="store_true", help="classifier without an OK class (all are defects)")
    parser.add_argument("--input-size", help="WxH the network was trained at")
    parser.add_argument("--mean", help="r,g,b in 0-255 units, model channel order, as in training (with --std)")
    parser.add_argument("--std", help="r,g,b in 0-255 units, model channel order, as in training (with --mean)")
    parser.add_argument(
        "--norm",
        choices=[n.value for n in NormPreset],
        help="named normalisation instead of --mean/--std: imagenet, or unit (0..1 inputs). Without --mean/--std "
        "or --norm it is read from the checkpoint, or the conversion is refused",
    )
    parser.add_argument("--bgr", action="store_true", help="the network was trained on BGR (default RGB)")
    parser.add_argument("--resize", choices=[r.value for r in ResizeMode], default="stretch")
    parser.add_argument("--precision", choices=[p.value for p in Precision], default="fp16")
    parser.add_argument("--calibration", type=Path, help="folder of images for INT8 (also used for parity)")
    parser.add_argument("--validation", type=Path, help="folder of class sub-folders for --max-drop")
    parser.add_argument("--max-drop", type=float, help="refuse INT8 losing more than this accuracy (0.01 = 1 pt)")
    parser.add_argument(
        "--accuracy-control",
        action="store_true",
        help="with --max-drop: let NNCF revert ops to float until the drop is within it (slower)",
    )
    parser.add_argument("--parity-samples", type=int, default=16, help="inputs compared (default 16)")
    parser.add_argument("--min-agreement", type=float, help="override the parity threshold (0..1)")
    parser.add_argument("--confidence-threshold", type=float, default=0.5)
    parser.add_argument("--iou-threshold", type=float, default=0.5)
    parser.add_argument("--anomaly-threshold", type=float, default=0.5)
    parser.add_argument("--onnx", action="store_true", help="keep model.onnx beside the IR")
    parser.add_argument("--sign", type=Path, metavar="KEY", help="Ed25519 private key PEM to sign the manifest")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def _options(args: argparse.Namespace) -> object:
    from pydantic import ValidationError

    from convert.options import ConvertOptions, parse_kwargs, parse_labels, parse_size, parse_triple
    from ovedge.errors import ConvertError

    width = height = None
    if args.input_size:
        width, height = parse_size(args.input_size)
    try:
        return ConvertOptions(
            checkpoint=args.checkpoint,
            name=args.name,
            out=args.out,
            arch=args.arch,
            arch_kwargs=parse_kwargs(args.arch_kwargs),
            arch_path=args.arch_path,
            trust_pickle=args.trust_pickle,
            task=args.task,
            labels=parse_labels(args.labels) if args.labels else (),
            ok_labels=tuple(x.strip() for x in args.ok_labels.split(",") if x.strip()),
            no_ok_label=args.no_ok_label,
            input_width=width,
            input_height=height,
            mean=parse_triple(args.mean, "--mean") if args.mean is not None else None,
            std=parse_triple(args.std, "--std") if args.std is not None else None,
            norm=args.norm,
            bgr=args.bgr,
            resize=args.resize,
            precision=args.precision,
            calibration=args.calibration,
            validation=args.validation,
            max_drop=args.max_drop,
            accuracy_control=args.accuracy_control,
            parity_samples=args.parity_samples,
            min_agreement=args.min_agreement,
            confidence_threshold=args.confidence_threshold,
            iou_threshold=args.iou_threshold,
            anomaly_threshold=args.anomaly_threshold,
            keep_onnx=args.onnx,
            sign_key=args.sign,
            progress=not args.quiet,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConvertError(f"--{where.replace('_', '-')}: {err['msg']}") from exc


def run_convert(argv: Sequence[str]) -> int:
    args = _convert_parser().parse_args(argv)
    _logging(args.verbose)
    from convert.options import ConvertOptions
    from convert.pipeline import convert
    from convert.progress import Progress

    options = _options(args)
    assert isinstance(options, ConvertOptions)
    result = convert(options, Progress(enabled=options.progress))
    meta = result.manifest.meta
    pre = meta.preprocessing
    print(f"labels: {', '.join(meta.labels)}")
    if meta.task.value == "classification":
        ok = ", ".join(meta.ok_labels) or "none (--no-ok-label: every class is a defect)"
        print(f"OK labels: {ok}")
    print(
        f"normalisation: mean {_csv(pre.mean)} std {_csv(pre.std)} (0-255 units, {pre.color}) "
        f"from {pre.normalization_source}"
    )
    print(f"parity ({options.precision.value}):")
    print(result.parity.table())
    print(f"wrote {result.path} (version {result.manifest.version}, {result.manifest.meta.task.value})")
    return 0


def _csv(values: Sequence[float]) -> str:
    return ",".join(f"{v:g}" for v in values)


def run_list(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog=f"{PROG} list", description="List the models in a store.")
    parser.add_argument("--out", type=Path, default=Path("ir_models"), help="model store root")
    args = parser.parse_args(argv)
    from convert.inspection import list_store

    print(list_store(args.out))
    return 0


def run_inspect(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} inspect", description="Show metadata, inputs/outputs, precision and parity of an IR."
    )
    parser.add_argument("path", type=Path, help="model.xml, a version folder, or a model folder (latest)")
    args = parser.parse_args(argv)
    from convert.inspection import describe

    print(describe(args.path))
    return 0


def _logging(verbose: bool) -> None:
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "list":
            return run_list(argv[1:])
        if argv and argv[0] == "inspect":
            return run_inspect(argv[1:])
        return run_convert(argv)
    except OvedgeError as exc:
        print(f"{PROG}: error: " + " ".join(str(exc).splitlines()), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
