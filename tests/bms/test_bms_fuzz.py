"""100,000 random and mutated frames per decoder: the only exception allowed is DecodeError."""

import json
import random

import pytest

from drivers.bms import DecodeError, decode
from drivers.bms import pylon_can

from .fixture_data import context, load

FRAMES_PER_DECODER = 100_000
PYLON_IDS = tuple(pylon_can.MIN_LENGTH) + (0x305, 0x35A, 0x7FF)


def _reseal(protocol: str, frame: bytearray, seed: bytes) -> bytearray:
    """Make a mutated frame pass the integrity checks (keeping the seed's command) so field decoding is fuzzed."""
    if protocol == "jbd" and len(frame) >= 7:
        frame[0], frame[1], frame[2], frame[-1] = 0xDD, seed[1], 0, 0x77
        frame[3] = (len(frame) - 7) & 0xFF
        body = frame[2:-3]
        frame[-3:-1] = ((0x10000 - sum(body)) & 0xFFFF).to_bytes(2, "big")
    elif protocol == "jk" and len(frame) == 300:
        frame[:5] = b"\x55\xaa\xeb\x90\x02"
        frame[-1] = sum(frame[:-1]) & 0xFF
    elif protocol == "daly" and frame and len(frame) % 13 == 0:
        for start in range(0, len(frame), 13):
            frame[start], frame[start + 2], frame[start + 3] = 0xA5, seed[2], 0x08
            frame[start + 12] = sum(frame[start : start + 12]) & 0xFF
    return frame


def _mutate(rng: random.Random, frame: bytearray) -> bytearray:
    for _ in range(rng.randint(1, 4)):
        action = rng.random()
        if action < 0.6 and frame:
            frame[rng.randrange(len(frame))] = rng.randrange(256)
        elif action < 0.8:
            frame.insert(rng.randint(0, len(frame)), rng.randrange(256))
        elif frame:
            del frame[rng.randrange(len(frame))]
    return frame


@pytest.mark.parametrize("protocol", ["jbd", "jk", "daly", "pylon-can"])
def test_only_decode_errors_escape_from_random_and_mutated_frames(protocol):
    rng = random.Random(f"bms-fuzz-{protocol}")
    seeds = [(bytes.fromhex(entry["hex"]), context(entry)) for entry in load(protocol)]
    typical = max(len(raw) for raw, _ in seeds)
    decoded = 0
    for i in range(FRAMES_PER_DECODER):
        seed, ctx = rng.choice(seeds)
        kind = i % 4
        if kind == 0:
            frame = bytearray(rng.randbytes(rng.randint(0, typical + 16)))
        elif kind == 1:
            frame = _mutate(rng, bytearray(seed))
        else:  # mutated, then resealed (2) or random payload in a resealed frame (3)
            frame = _mutate(rng, bytearray(seed)) if kind == 2 else bytearray(rng.randbytes(len(seed)))
            frame = _reseal(protocol, frame, seed)
        if protocol == "pylon-can":
            ctx = {"can_id": rng.choice(PYLON_IDS)}
        try:
            out = decode(protocol, bytes(frame), **ctx)
        except DecodeError:
            continue
        decoded += 1
        assert isinstance(out, dict) and out
        if decoded % 97 == 0:
            json.dumps(out, allow_nan=False)
    assert decoded > FRAMES_PER_DECODER // 5  # the resealed half really reaches the field decoders
