"""All southbound link figures in one JSON object: runs benchmarks/modbus_links.py, can_links.py and
ble_links.py one after another (each in its own process, so one link's threads do not load another's
measurement) and merges their last JSON lines. Keys include modbus_tcp_req_per_s, can_frames_per_s,
ble_notifications_per_s."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(name: str) -> dict:
    proc = subprocess.run([sys.executable, str(HERE / f"{name}.py"), "--json"], capture_output=True, text=True,
                          timeout=120, cwd=HERE.parent)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--cells", type=int, default=None, help="ignored: each link benchmark uses its own pack size")
    ap.parse_args()
    figures: dict = {}
    for name in ("modbus_links", "can_links", "ble_links"):
        figures.update({k: v for k, v in run(name).items() if k not in figures})
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
