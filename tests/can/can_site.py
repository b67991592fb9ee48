"""Helpers for the CAN tests: a small site with one `can` link, the plant, and running workers."""
from __future__ import annotations

import numpy as np

from app.core.site import Site, parse_site
from app.sim.plant import Plant


def can_site(options: str, address: str = "can0", racks: int = 1, modules: int = 4, cells: int = 4,
             poll_s: float = 0.2, comm_loss_periods: int = 2) -> Site:
    """One PCS on a Modbus link (unused here) and a BESS whose racks sit on the `can` link `bms1`."""
    rack_lines = ",\n".join(f'  {{ link = "bms1", unit_id = {i + 1} }}' for i in range(racks))
    return parse_site(f"""
[site]
name = "CAN test site"

[[link]]
name = "bms1"
kind = "can"
address = "{address}"
poll_period_s = {poll_s}
timeout_s = 0.3
comm_loss_periods = {comm_loss_periods}
options = {{ {options} }}

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
chemistry = "lfp"
cell_capacity_ah = 100.0
pcs = "pcs1"
modules_per_rack = {modules}
cells_per_module = {cells}
racks = [
{rack_lines},
]
""", "can-test.toml")


def plant_for(site: Site, current_a: float = 12.5) -> Plant:
    """A plant with a known, non-trivial state: current flowing and cells spread in SOC."""
    plant = Plant(site, seed=7)
    for model in plant.racks.values():
        model.current_a = current_a
        model.soc = np.linspace(0.30, 0.60, model.rack.cell_count)
    return plant
