"""The simulator's socketcand server, checked with python-can's own socketcand client over loopback."""
from __future__ import annotations

import socket

import can
import pytest
from can.interfaces.socketcand.socketcand import convert_ascii_message_to_can_message

from app.core.clock import SystemClock
from app.core.errors import ConfigError
from app.sim.can_endpoint import CanSimLink
from app.sim.socketcand_server import SocketcandServer, format_frame, parse_send
from can_site import can_site, plant_for
from drivers import bms
from support import free_port, wait_for


@pytest.fixture
def sim_link():
    port = free_port()
    site = can_site(f'interface = "socketcand", port = {port}')
    plant = plant_for(site, current_a=-15.0)
    sim = CanSimLink(site.link("bms1"), list(plant.racks.values()), SystemClock())
    sim.start()
    yield sim, plant, port
    sim.stop()


def _recv_until(bus, predicate, timeout=5.0):
    found = []

    def check():
        msg = bus.recv(0.05)
        if msg is not None and predicate(msg):
            found.append(msg)
        return found
    return wait_for(check, timeout=timeout, what="a matching frame")[0]


def test_python_can_socketcand_client_receives_the_simulators_frames(sim_link):
    sim, plant, port = sim_link
    bus = can.Bus(interface="socketcand", host="127.0.0.1", port=port, channel="can0")
    try:
        msg = _recv_until(bus, lambda m: m.arbitration_id == 0x356)
    finally:
        bus.shutdown()
    model = next(iter(plant.racks.values()))
    fields = bms.decode("pylon-can", bytes(msg.data), can_id=0x356)
    assert fields["pack_voltage_v"] == pytest.approx(model.pack_voltage, abs=0.005)
    assert fields["current_a"] == -15.0
    assert not msg.is_extended_id and msg.timestamp > 1e9


def test_frames_sent_by_the_client_reach_the_bridged_channel(sim_link):
    sim, _, port = sim_link
    listener = can.Bus(interface="virtual", channel=sim.channel)
    client = can.Bus(interface="socketcand", host="127.0.0.1", port=port, channel="can0")
    try:
        client.send(can.Message(arbitration_id=0x305, is_extended_id=False, data=b"\x00" * 8))
        client.send(can.Message(arbitration_id=0x18FF50E5, is_extended_id=True, data=b"\x01\xf1"))
        std = _recv_until(listener, lambda m: m.arbitration_id == 0x305)
        ext = _recv_until(listener, lambda m: m.is_extended_id)
    finally:
        client.shutdown()
        listener.shutdown()
    assert bytes(std.data) == b"\x00" * 8 and not std.is_extended_id
    assert ext.arbitration_id == 0x18FF50E5 and bytes(ext.data) == b"\x01\xf1"


def test_handshake_echo_and_unsupported_commands_on_a_raw_socket(sim_link):
    _, _, port = sim_link
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        assert s.recv(64) == b"< hi >"
        s.sendall(b"< open can0 >")
        assert s.recv(64) == b"< ok >"
        s.sendall(b"< echo >")
        assert s.recv(64) == b"< echo >"
        s.sendall(b"< subscribe 0 0 351 >")
        assert s.recv(128).startswith(b"< error subscribe")


def test_an_unknown_channel_is_refused_and_the_connection_closed(sim_link):
    _, _, port = sim_link
    with pytest.raises(can.CanError, match="could not open bus"):
        can.Bus(interface="socketcand", host="127.0.0.1", port=port, channel="can7")


def test_server_refuses_a_non_loopback_address():
    with pytest.raises(ConfigError, match="loopback"):
        SocketcandServer("0.0.0.0", 0, {"can0": {"interface": "virtual", "channel": "x"}})


@pytest.mark.parametrize("msg", [
    can.Message(timestamp=1700000000.25, arbitration_id=0x351, is_extended_id=False, data=bytes(range(8))),
    can.Message(timestamp=1700000000.000001, arbitration_id=0x1ABCDEF0, is_extended_id=True, data=b"\xff"),
    can.Message(timestamp=12.5, arbitration_id=0x7FF, is_extended_id=False, data=b""),
])
def test_frame_syntax_parses_with_python_cans_parser(msg):
    text = format_frame(msg)
    parsed = convert_ascii_message_to_can_message(text)
    assert (parsed.arbitration_id, parsed.is_extended_id, bytes(parsed.data)) == \
        (msg.arbitration_id, msg.is_extended_id, bytes(msg.data))
    assert parsed.timestamp == pytest.approx(msg.timestamp, abs=1e-6)


def test_error_frames_go_out_as_socketcand_error_messages():
    msg = can.Message(timestamp=5.5, arbitration_id=0x4, is_error_frame=True)
    assert format_frame(msg) == "< error 004 5.500000 >"
    assert convert_ascii_message_to_can_message(format_frame(msg)).is_error_frame


def test_send_parsing_follows_socketcand():
    assert parse_send("send 123 0".split()).dlc == 0
    assert bytes(parse_send("send 1AAAAAAA 2 1 F1".split()).data) == b"\x01\xf1"
    assert parse_send("send 123 3 1 2".split()) is None           # fewer bytes than LEN
    assert parse_send("send 800 0".split()) is None                # not an 11-bit id
    assert parse_send("send 123 9 1 2 3 4 5 6 7 8 9".split()) is None
