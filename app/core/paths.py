"""Where resources and user data live."""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parents[2]))
RESOURCES = ROOT / "resources"
EXAMPLE_SITE = RESOURCES / "site.example.toml"


def default_data_dir() -> Path:
    """The platform's user data dir (historian, users, audit, settings), overridable by ESMS_DATA_DIR."""
    if os.environ.get("ESMS_DATA_DIR"):
        return Path(os.environ["ESMS_DATA_DIR"])
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "esms"
