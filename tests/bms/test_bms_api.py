"""The public seam the CLI calls: drivers.bms.decode, DecodeError, PROTOCOLS, and the registry."""

import pytest

from drivers import bms
from drivers.bms import PROTOCOLS, DecodeError, decode, registry


def test_protocols_are_the_cli_contract():
    assert PROTOCOLS == ("jbd", "jk", "daly", "pylon-can")


def test_decode_accepts_bytearray_and_memoryview():
    frame = bytes.fromhex("dd0400080d660d610d680d59fe3c77")
    assert decode("jbd", bytearray(frame)) == decode("jbd", memoryview(frame)) == decode("jbd", frame)


def test_a_new_model_is_one_registration_away(monkeypatch):
    monkeypatch.setattr(registry, "_PROTOCOLS", dict(registry._PROTOCOLS))

    def decode_echo(raw: bytes) -> dict:
        if not raw:
            raise DecodeError("echo bad length 0")
        return {"cell_count": len(raw)}

    registry.register(registry.BmsProtocol("echo", decode_echo))
    assert registry.decode("echo", b"\x01\x02") == {"cell_count": 2}
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(registry.BmsProtocol("echo", decode_echo))


def test_decode_error_message_names_the_protocols_to_use():
    with pytest.raises(DecodeError, match="jbd, jk, daly, pylon-can"):
        decode("seplos", b"")


def test_package_exports_only_the_seam():
    assert set(bms.__all__) == {"PROTOCOLS", "DecodeError", "decode"}
