"""``python -m gameday.controlplane --port N``: run the control plane alone until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from gameday.controlplane.server import ControlPlane
from gameday.errors import GamedayError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gameday.controlplane",
        description="Local AWS control plane (moto + Global Accelerator) on 127.0.0.1",
    )
    parser.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    cp = ControlPlane(port=args.port)
    try:
        cp.start()
    except GamedayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"READY {cp.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        cp.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
