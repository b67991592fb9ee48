"""Shared loaders for the annotated BMS fixtures in tests/fixtures/bms/."""

import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bms"
FILES = {"jbd": "jbd.json", "jk": "jk.json", "daly": "daly.json", "pylon-can": "pylon_can.json"}


def load(protocol: str) -> list[dict]:
    """Fixture entries of one protocol: hex, source, basis, expected and can_id/variant where needed."""
    return json.loads((FIXTURES / FILES[protocol]).read_text())


def context(entry: dict) -> dict:
    """decode() keyword arguments an entry needs."""
    out = {}
    if "can_id" in entry:
        out["can_id"] = int(entry["can_id"], 16)
    if "variant" in entry:
        out["variant"] = entry["variant"]
    return out
