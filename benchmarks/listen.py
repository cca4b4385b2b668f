"""The benchmark's MQTT consumer, in its own process (as a line's MES client would be).

    python benchmarks/listen.py --port P --topic T --count N --out FILE [--timeout S]

Prints ``ready`` once the subscription is acknowledged, stamps every message with ``time.time()``
on arrival, and after ``count`` messages (or ``timeout`` seconds) writes them as JSON lines
``{"t": epoch, "payload": "..."}`` to ``FILE`` and exits. Running it apart from the daemon keeps
its paho thread from competing with the daemon's threads for the daemon's GIL.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.subscriber import Subscriber


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args()
    got: list[tuple[float, bytes]] = []
    done = threading.Event()

    def on_message(topic: str, payload: bytes, retained: bool) -> None:
        got.append((time.time(), payload))
        if len(got) >= args.count:
            done.set()

    with Subscriber(args.port, [args.topic], on_message=on_message):
        print("ready", flush=True)
        done.wait(args.timeout)
    with args.out.open("w", encoding="utf-8") as fh:
        for t, payload in got:
            fh.write(json.dumps({"t": t, "payload": payload.decode()}) + "\n")
    return 0 if len(got) >= args.count else 1


if __name__ == "__main__":
    sys.exit(main())
