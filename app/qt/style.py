"""Styling helpers: abnormal state is a dynamic property styled in resources/hmi.qss (PyDM habit)."""
from __future__ import annotations

from PySide6 import QtWidgets

from app.core.paths import RESOURCES


def set_state(widget: QtWidgets.QWidget, state: str) -> None:
    """state: '' (normal), 'stale', 'warn', 'alarm', 'trip' -> QSS `[state="..."]` selectors."""
    if widget.property("state") != state:
        widget.setProperty("state", state)
        widget.style().unpolish(widget)
        widget.style().polish(widget)


def stylesheet() -> str:
    return (RESOURCES / "hmi.qss").read_text(encoding="utf-8")
