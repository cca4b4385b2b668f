"""``make demo``: a private broker, the daemon on the default config, and a subscriber's view.

Starts Mosquitto on a free port (installing Debian's package when missing and we are root),
runs ``ovedged run --config config.toml`` against it, and prints one line per result a
subscriber receives, with the verdict checked against the synthetic camera's ground truth.
Ctrl-C stops everything it started, in order, and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from camera.synthetic import DefectGenerator  # noqa: E402
from daemon.config import load_config  # noqa: E402
from tools.mosquitto import INSTALL_HINT, Mosquitto, find_mosquitto  # noqa: E402
from tools.subscriber import Subscriber  # noqa: E402


def ensure_mosquitto() -> bool:
    if find_mosquitto():
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("demo: mosquitto is missing; installing Debian's package (apt-get install -y mosquitto)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "mosquitto"], check=False, env=env)
        if find_mosquitto():
            return True
    print(f"demo: mosquitto is not installed; {INSTALL_HINT}", file=sys.stderr)
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", type=Path, default=ROOT / "config.toml")
    ap.add_argument("--seconds", type=float, default=0, help="stop after this long (0 = until Ctrl-C)")
    ap.add_argument("--fps", type=float, default=None, help="override the synthetic camera's fps (0 = max)")
    args = ap.parse_args()
    if not ensure_mosquitto():
        return 1
    cfg = load_config(args.config)
    truth: dict[str, DefectGenerator] = {}
    for cam in cfg.cameras:
        src = cam.source
        if src.type == "synthetic":
            truth[cam.id] = DefectGenerator(src.seed, src.width, src.height, src.defect_rate)

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stats = {"n": 0, "agree": 0, "judged": 0, "first": 0.0, "last": 0.0}
    prefix = f"{cfg.station.topic_prefix}/{cfg.station.name}"

    last_state: list[str] = []
    camera_states: dict[str, str] = {}  # camera id -> the last state shown

    def show(topic: str, payload: bytes, retained: bool) -> None:
        msg = json.loads(payload)
        if topic.endswith("/alarm"):
            print(f"alarm   {msg.get('alarm')} {'raised' if msg.get('active') else 'cleared'}: {msg.get('reason')}",
                  flush=True)
            return
        if topic.endswith("/status") and topic.count("/") == 3:  # <prefix>/<station>/<camera>/status
            camera_state = f"{msg.get('camera')} {msg.get('state')}"
            if camera_states.get(str(msg.get("camera"))) != camera_state:
                camera_states[str(msg.get("camera"))] = camera_state
                print(f"camera  {camera_state}{'  ' + str(msg['last_error']) if msg.get('last_error') else ''}",
                      flush=True)
            return
        if topic.endswith("/status"):
            if last_state and last_state[-1] == msg.get("state"):
                return  # the periodic refresh (spool depth, rate): only changes are shown
            last_state.append(str(msg.get("state")))
            print(f"status  {msg.get('state')}{' (retained)' if retained else ''}"
                  f"{'  reason: ' + msg['reason'] if 'reason' in msg else ''}", flush=True)
            return
        if not topic.endswith("/result"):
            return  # the periodic <prefix>/<station>/stats and evidence images are not results
        now = time.monotonic()
        stats["first"] = stats["first"] or now
        stats["last"] = now
        stats["n"] += 1
        defects = ", ".join(f"{d['label']} {d['score']:.2f}" for d in msg["defects"]) or "-"
        check = ""
        gen = truth.get(msg["camera"])
        if gen is not None:
            label = gen.label(msg["frame"]["index"])
            expected = "NG" if label != "ok" else "OK"
            stats["judged"] += 1
            stats["agree"] += expected == msg["verdict"]
            check = f"  truth {label:<7} {'✓' if expected == msg['verdict'] else '✗'}"
        print(f"#{msg['seq']:<6} {msg['camera']:<6} frame {msg['frame']['index']:<6} {msg['verdict']:<5} "
              f"{defects:<22} {msg['timings']['capture_to_result_ms']:7.1f} ms{check}", flush=True)

    with Mosquitto() as broker:
        print(f"demo: broker on 127.0.0.1:{broker.port}; subscribing to {prefix}/#")
        with Subscriber(broker.port, [f"{prefix}/#"], on_message=show):
            cmd = [sys.executable, "-m", "daemon.cli", "run", "--config", str(args.config),
                   "--set", f"mqtt.port={broker.port}", "--set", f"state.dir={ROOT / '.demo' / 'state'}",
                   "--set", f"model.cache_dir={ROOT / '.demo' / 'cache'}"]
            if args.fps is not None:
                cmd += ["--set", f"cameras[0].source.fps={args.fps}"]
            daemon = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)
            started = time.monotonic()
            while not stop.is_set() and daemon.poll() is None:
                if args.seconds and time.monotonic() - started > args.seconds:
                    break
                stop.wait(0.2)
            if daemon.poll() is None:
                print("demo: stopping the daemon (SIGTERM)", flush=True)
                daemon.send_signal(signal.SIGTERM)
            code = daemon.wait()
            time.sleep(0.3)  # the final stopped status
    span = stats["last"] - stats["first"]
    fps = (stats["n"] - 1) / span if stats["n"] > 1 and span > 0 else 0.0
    agree = f", verdict = injected truth for {100 * stats['agree'] / stats['judged']:.1f}%" if stats["judged"] else ""
    print(f"demo: {stats['n']} results at {fps:.1f} frames/s{agree}; daemon exit code {code}")
    return 0 if code == 0 else code


if __name__ == "__main__":
    sys.exit(main())
