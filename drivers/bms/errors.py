"""The one error a BMS decoder raises for a frame it cannot accept."""

from app.core.errors import UserError


class DecodeError(UserError):
    """A raw frame was rejected; the message names the reason (header, length, checksum, end byte, ...)."""
