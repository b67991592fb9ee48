"""Pure BMS frame decoders and encoders (no I/O).

``decode(protocol, raw, can_id=..., variant=...)`` turns one raw frame into a dict of the canonical
fields of DESIGN.md section 4, following shared/protocols.md. Each model module registers itself
with :mod:`drivers.bms.registry` when imported and also offers the encoders and request builders a
driver or the plant simulator needs. Adding a model: one module here that calls
``registry.register(...)``, one import line below, and fixtures in tests/fixtures/bms/.
"""

# isort: off  -- importing a model registers it; this order is the order of PROTOCOLS
from drivers.bms import jbd  # noqa: F401
from drivers.bms import jk  # noqa: F401
from drivers.bms import daly  # noqa: F401
from drivers.bms import pylon_can  # noqa: F401

# isort: on
from drivers.bms import registry
from drivers.bms.errors import DecodeError
from drivers.bms.registry import decode

PROTOCOLS: tuple[str, ...] = registry.names()

__all__ = ["PROTOCOLS", "DecodeError", "decode"]
