"""Sites for the plant tests: built in memory (the plant binds no ports)."""
from __future__ import annotations

from app.core.site import Site, parse_site


def sim_site(racks: int = 2, modules: int = 2, cells: int = 8, capacity_ah: float = 100.0, chemistry: str = "lfp",
             rated_kw: float | None = None, bess: int = 1) -> Site:
    """`bess` BESS of `racks` racks each (modules x cells), one PCS per BESS rated at 0.5C by default."""
    if rated_kw is None:
        rated_kw = round(racks * modules * cells * 3.2 * capacity_ah / 1000 * 0.5, 1)
    out = ['[site]\nname = "plant test"\n\n[[link]]\nname = "bms1"\nkind = "modbus-tcp"\naddress = "127.0.0.1:1"\n\n']
    for b in range(1, bess + 1):
        out.append(f'[[pcs]]\nid = "pcs{b}"\nlink = "bms1"\nunit_id = {200 + b}\nrated_power_kw = {rated_kw}\n\n')
    for b in range(1, bess + 1):
        rack_lines = ", ".join(f'{{ link = "bms1", unit_id = {(b - 1) * racks + i + 1} }}' for i in range(racks))
        out.append(f'[[bess]]\nid = "bess{b}"\nchemistry = "{chemistry}"\ncell_capacity_ah = {capacity_ah}\n'
                   f'pcs = "pcs{b}"\nmodules_per_rack = {modules}\ncells_per_module = {cells}\n'
                   f'racks = [{rack_lines}]\n\n')
    return parse_site("".join(out), "plant-test.toml")
