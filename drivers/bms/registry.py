"""Plug-in registry of BMS frame decoders.

A BMS model is one module in this package that calls :func:`register` at import time with a
:class:`BmsProtocol`; ``drivers.bms`` imports the built-in modules, and :func:`decode` dispatches
on the protocol name. Pure: no I/O, no state beyond the table filled at import.
"""

from collections.abc import Callable
from dataclasses import dataclass

from drivers.bms.errors import DecodeError


@dataclass(frozen=True)
class BmsProtocol:
    """How to decode one protocol: ``decode(raw)``, plus ``can_id=`` or ``variant=`` when needed."""

    name: str
    decode: Callable[..., dict]
    needs_can_id: bool = False
    variants: tuple[str, ...] = ()


_PROTOCOLS: dict[str, BmsProtocol] = {}


def register(protocol: BmsProtocol) -> BmsProtocol:
    """Add a protocol under its name; a second registration of the same name is a bug."""
    if protocol.name in _PROTOCOLS:
        raise ValueError(f"BMS protocol {protocol.name!r} is registered twice")
    _PROTOCOLS[protocol.name] = protocol
    return protocol


def names() -> tuple[str, ...]:
    """Registered protocol names, in registration order."""
    return tuple(_PROTOCOLS)


def decode(protocol: str, raw: bytes, *, can_id: int | None = None, variant: str | None = None) -> dict:
    """Decode one raw frame of ``protocol`` to a dict of canonical fields (DESIGN.md section 4).

    Raises DecodeError for an unknown protocol, a missing or unknown variant, a missing CAN id,
    or a frame that fails the protocol's integrity checks.
    """
    spec = _PROTOCOLS.get(protocol)
    if spec is None:
        raise DecodeError(f"unknown BMS protocol {protocol!r}: use one of {', '.join(_PROTOCOLS)}")
    kwargs: dict = {}
    if spec.needs_can_id:
        if can_id is None:
            raise DecodeError(f"protocol {protocol!r} needs a CAN id (--can-id, e.g. 0x351)")
        kwargs["can_id"] = can_id
    elif can_id is not None:
        raise DecodeError(f"protocol {protocol!r} takes no CAN id: drop --can-id")
    if spec.variants:
        if variant is None:
            raise DecodeError(f"protocol {protocol!r} needs a variant (--variant {' or '.join(spec.variants)})")
        if variant not in spec.variants:
            raise DecodeError(
                f"unknown variant {variant!r} for protocol {protocol!r}: use {' or '.join(spec.variants)}"
            )
        kwargs["variant"] = variant
    elif variant is not None:
        raise DecodeError(f"protocol {protocol!r} has no variants: drop --variant")
    return spec.decode(bytes(raw), **kwargs)
