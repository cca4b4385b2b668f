"""The seed document's classification service, for ``benchmarks/http_bench.py`` to beat.

The reference (a Flask ``/run`` route under ``gunicorn -w N``): the upload in multipart field
``file`` is saved to a temporary file, opened with Pillow, turned into a tensor with torchvision's
``ToTensor`` (done here with numpy: torchvision is not installed; same result, values 0..1, CHW),
run through a ResNet-18 in PyTorch eager, and answered as ``result : <label>``. Kept as the seed
has it, with two changes that can only make it faster: ``torch.inference_mode()`` (the seed
builds the autograd graph) and the temporary file is deleted after use (the seed keeps it).

Run by gunicorn: ``SEED_CHECKPOINT=resnet18.pt gunicorn -w 2 -b 127.0.0.1:PORT --chdir benchmarks
seed_service:app``. ``SEED_TORCH_THREADS`` (default 1: two workers on two cores) sets each
worker's intra-op threads.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import numpy as np
import torch
from flask import Flask, request
from PIL import Image
from resnet18 import build

torch.set_num_threads(int(os.environ.get("SEED_TORCH_THREADS", "1")))
net = build(0)
net.load_state_dict(torch.load(os.environ["SEED_CHECKPOINT"], map_location="cpu", weights_only=True), strict=True)
net.eval()
key = [f"class{i}" for i in range(1000)]
TEMP = Path(tempfile.gettempdir()) / f"seed-service-{os.getpid()}"
TEMP.mkdir(exist_ok=True)

app = Flask(__name__)


@app.route("/", methods=["GET"])
def show() -> str:
    return "classifier api"


@app.route("/run", methods=["GET", "POST"])
def run() -> str:
    file = request.files["file"]
    upload_path = TEMP / uuid.uuid4().hex
    file.save(upload_path)
    try:
        img = Image.open(upload_path).convert("RGB")
        img_tensor = torch.from_numpy(np.asarray(img, np.float32).transpose(2, 0, 1) / 255.0).unsqueeze(0)
        with torch.inference_mode():
            out = net(img_tensor)
        pred = int(torch.argmax(out, dim=1))
    finally:
        upload_path.unlink(missing_ok=True)
    return f"result : {key[pred]}"
