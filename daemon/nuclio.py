"""``ovedge-nuclio MODEL_DIR OUT_DIR``: a Nuclio function folder that serves a model to CVAT.

The folder holds everything ``nuctl deploy --path OUT_DIR`` (or CVAT's ``deploy_cpu.sh``) needs:

* ``function.yaml``: the metadata CVAT reads (``metadata.annotations``: ``type: detector`` —
  CVAT lists no other type as an automatic annotator —, ``framework: openvino``, ``spec`` with
  every label and its id) and a build on a plain Python image;
* ``main.py``: ``init_context`` loads the IR once; ``handler`` answers CVAT's
  ``{"image": base64, "threshold": float}`` through :class:`daemon.cvat.CvatDetector`, the same
  decode -> infer -> post-process path as the daemon's ``POST /cvat``;
* ``model/<name>/<version>/``: the model version as it is in the store (hashes checked on load);
* ``ovedge/``, ``camera/``, ``daemon/``: this installation's sources (the HTTP server left out),
  so the function runs exactly the code that wrote it; ``requirements.txt`` lists what they import.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from daemon.cvat import label_spec
from ovedge.errors import OvedgeError
from ovedge.irmeta import Manifest
from ovedge.store import MANIFEST

__all__ = ["main", "write_function"]

REQUIREMENTS = ("openvino", "numpy", "opencv-python-headless", "pydantic", "pillow", "cryptography")
_PACKAGES = ("ovedge", "camera", "daemon")
_LEFT_OUT = (("daemon", "http"),)  # the web server: the function does not serve HTTP itself

_MAIN = '''"""Nuclio handler for CVAT automatic annotation: {label}. Written by ovedge-nuclio."""

import json
from pathlib import Path

from pydantic import ValidationError

from daemon.cvat import CvatDetector
from ovedge.errors import OvedgeError

MODEL_DIR = Path(__file__).resolve().parent / "model"


def init_context(context):
    context.logger.info("loading the model from " + str(MODEL_DIR))
    context.user_data.detector = CvatDetector.load(MODEL_DIR)
    context.logger.info("model loaded: " + context.user_data.detector.model.label)


def handler(context, event):
    body = event.body
    try:
        if isinstance(body, (bytes, bytearray, str)):
            body = json.loads(body)
        shapes = context.user_data.detector.annotate(body)
    except (OvedgeError, ValidationError, ValueError, TypeError) as exc:
        return context.Response(body=json.dumps({{"detail": str(exc)}}), headers={{}},
                                content_type="application/json", status_code=400)
    return context.Response(body=json.dumps(shapes), headers={{}},
                            content_type="application/json", status_code=200)
'''


class NuclioSourceError(OvedgeError):
    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def write_function(model_dir: Path, out_dir: Path, *, python: str = "3.11") -> Path:
    """Write the function folder for the model version in ``model_dir``; returns ``function.yaml``."""
    manifest_path = model_dir / MANIFEST
    if not manifest_path.is_file():
        raise NuclioSourceError(model_dir, f"no {MANIFEST}: give a model version folder, e.g. ir_models/demo/1")
    manifest = Manifest.from_json(manifest_path.read_text(encoding="utf-8"), source=str(manifest_path))
    if out_dir.exists() and any(out_dir.iterdir()):
        raise NuclioSourceError(out_dir, "exists and is not empty: choose a new folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(model_dir, out_dir / "model" / manifest.name / str(manifest.version))
    _vendor_sources(out_dir)
    label = f"{manifest.name} v{manifest.version}"
    (out_dir / "main.py").write_text(_MAIN.format(label=label), encoding="utf-8")
    (out_dir / "requirements.txt").write_text("\n".join(REQUIREMENTS) + "\n", encoding="utf-8")
    spec = json.dumps(label_spec(manifest.meta), indent=2)
    yaml = _function_yaml(manifest, spec, python)
    path = out_dir / "function.yaml"
    path.write_text(yaml, encoding="utf-8")
    return path


def _function_yaml(manifest: Manifest, spec: str, python: str) -> str:
    q = json.dumps  # a JSON string is a valid YAML double-quoted scalar
    name = f"ovedge-{manifest.name}-v{manifest.version}".lower().replace("_", "-")
    indented_spec = "\n".join("      " + line for line in spec.splitlines())
    return f"""# Written by ovedge-nuclio for {manifest.name} v{manifest.version}.
# Deploy: nuctl deploy --path THIS_FOLDER (or with CVAT's serverless/deploy_cpu.sh)
metadata:
  name: {q(name)}
  namespace: cvat
  annotations:
    name: {q(f"{manifest.name} v{manifest.version} (ovedge)")}
    type: detector
    framework: openvino
    spec: |
{indented_spec}

spec:
  description: {q(f"ovedge {manifest.meta.task.value} model {manifest.name} v{manifest.version} on OpenVINO (CPU)")}
  runtime: {q(f"python:{python}")}
  handler: main:handler
  eventTimeout: 30s
  build:
    image: {q(f"cvat.{name}")}
    baseImage: {q(f"python:{python}-slim")}
    directives:
      postCopy:
        - kind: RUN
          value: pip install --no-cache-dir -r /opt/nuclio/requirements.txt
  triggers:
    myHttpTrigger:
      maxWorkers: 1
      kind: http
      workerAvailabilityTimeoutMilliseconds: 10000
      attributes:
        maxRequestBodySize: 33554432
  platform:
    attributes:
      restartPolicy:
        name: always
        maximumRetryCount: 3
      mountMode: volume
"""


def _vendor_sources(out_dir: Path) -> None:
    import camera
    import ovedge

    roots = {
        "ovedge": Path(ovedge.__file__).parent,
        "camera": Path(camera.__file__).parent,
        "daemon": Path(__file__).parent,
    }
    for name in _PACKAGES:
        root = roots[name]
        for src in sorted(root.rglob("*.py")):
            rel = Path(name) / src.relative_to(root)
            if any(rel.parts[: len(prefix)] == prefix for prefix in _LEFT_OUT) or "__pycache__" in rel.parts:
                continue
            dest = out_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ovedge-nuclio",
        description="write a Nuclio function folder that serves a converted model to CVAT's automatic annotation",
    )
    parser.add_argument("model_dir", type=Path, help="a model version folder, e.g. ir_models/demo/1")
    parser.add_argument("out_dir", type=Path, help="the function folder to create (new or empty)")
    parser.add_argument("--python", default="3.11", help="Python version of the function image (default 3.11)")
    args = parser.parse_args(argv)
    try:
        path = write_function(args.model_dir, args.out_dir, python=args.python)
    except OvedgeError as exc:
        print(f"ovedge-nuclio: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"wrote {path}; deploy with: nuctl deploy --path {args.out_dir} --platform local")
    return 0


if __name__ == "__main__":
    sys.exit(main())
