"""A site whose BMS speaks Pylontech CAN: simulator -> socketcand on loopback -> CanDriver -> DataBus."""
from __future__ import annotations

from app.core.site import load_site
from app.runtime import Runtime
from support import free_port, site_text, wait_for


def test_can_rack_is_served_over_socketcand_and_reaches_the_bus(tmp_path):
    site_file = tmp_path / "site.toml"
    site_file.write_text(site_text(free_port(), free_port(), racks=1, modules=2, cells=8, bms_can=True))
    site = load_site(site_file)
    rt = Runtime(site, tmp_path / "data")
    rt.start()
    try:
        volts = wait_for(lambda: rt.bus.get("site.bess1.rack01.cell_voltages_v"), what="cell voltages over CAN")
        assert volts.value.shape == (16,) and 3.0 < float(volts.value.mean()) < 3.5
        soc = wait_for(lambda: rt.bus.get("site.bess1.rack01.soc_pct"))
        assert 40 <= soc.value <= 60
        assert rt.bus.get("site.links.bms1.status").value == "ONLINE"
    finally:
        assert rt.stop() == []
