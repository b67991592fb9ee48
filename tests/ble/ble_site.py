"""Helpers for the BLE tests: a site whose racks each sit on their own `ble` link, the plant, and a
stack (DataBus, journal, router, supervisor) running drivers like the runtime does."""
from __future__ import annotations

import contextlib

import numpy as np

from app.core.site import Site, parse_site
from app.sim.ble_endpoint import BleSimLink
from app.sim.plant import Plant


def ble_site(packs: list[str], modules: int = 2, cells: int = 4, poll_s: float = 0.2, timeout_s: float = 0.3,
             comm_loss_periods: int = 2, connect_timeout_s: float = 1.0, addresses: list[str] | None = None,
             ports: list[int | None] | None = None, chemistry: str = "lfp") -> Site:
    """One bumble `ble` link per pack; `packs` holds each link's options, e.g. 'protocol = "jbd"'."""
    links, racks = [], []
    for i, options in enumerate(packs, start=1):
        address = addresses[i - 1] if addresses else f"C0:00:00:00:01:{i:02X}"
        port = f", port = {ports[i - 1]}" if ports and ports[i - 1] else ""
        links.append(f"""
[[link]]
name = "pack{i}"
kind = "ble"
address = "{address}"
poll_period_s = {poll_s}
timeout_s = {timeout_s}
comm_loss_periods = {comm_loss_periods}
options = {{ {options}, transport = "bumble", connect_timeout_s = {connect_timeout_s}{port} }}
""")
        racks.append(f'  {{ link = "pack{i}", unit_id = 1 }}')
    rack_lines = ",\n".join(racks)
    return parse_site(f"""
[site]
name = "BLE test site"
{''.join(links)}
[[link]]
name = "pcs1"
kind = "modbus-tcp"
address = "127.0.0.1:1502"

[[pcs]]
id = "pcs1"
link = "pcs1"
unit_id = 1
rated_power_kw = 10.0

[[bess]]
id = "bess1"
chemistry = "{chemistry}"
cell_capacity_ah = 100.0
pcs = "pcs1"
modules_per_rack = {modules}
cells_per_module = {cells}
racks = [
{rack_lines},
]
""", "ble-test.toml")


def plant_for(site: Site, current_a: float = 12.5) -> Plant:
    """A plant with a known, non-trivial state: current flowing, cells spread in SOC and temperature."""
    plant = Plant(site, seed=7)
    for model in plant.racks.values():
        n = model.rack.cell_count
        model.current_a = current_a
        model.soc = np.linspace(0.30, 0.60, n)
        model.temp_c = np.linspace(22.0, 31.0, n)
    return plant


def sim_links(site: Site, plant: Plant) -> list[BleSimLink]:
    return [BleSimLink(site.link(r.link), [plant.racks[r.path]]) for r in site.racks]


@contextlib.contextmanager
def serving(*sims: BleSimLink):
    """Simulated packs powered on for the block, powered off after."""
    started = []
    try:
        for sim in sims:
            sim.start()
            started.append(sim)
        yield
    finally:
        for sim in started:
            sim.stop()
