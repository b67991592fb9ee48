"""Small pieces shared by the GUI's dialogs."""
from __future__ import annotations

from typing import Callable

from PySide6 import QtWidgets


def ok_cancel(dialog: QtWidgets.QDialog, on_ok: Callable[[], None]) -> QtWidgets.QDialogButtonBox:
    """OK/Cancel buttons: OK runs `on_ok` (which validates and accepts), Cancel rejects."""
    box = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok
                                     | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
    box.accepted.connect(on_ok)
    box.rejected.connect(dialog.reject)
    return box
