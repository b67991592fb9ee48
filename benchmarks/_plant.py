"""Shared by benchmarks: generated large sites and a simulator in its own process."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def site_toml(cells: int, cells_per_rack: int = 1000, racks_per_link: int = 10, poll_s: float = 1.0) -> str:
    """A site of about `cells` LFP cells in racks of `cells_per_rack` (20 modules), racks spread over
    Modbus TCP links of up to `racks_per_link` unit ids each, plus one PCS link."""
    modules = 20 if cells_per_rack % 20 == 0 and cells_per_rack >= 20 else 1
    per_module = cells_per_rack // modules
    racks = max(1, round(cells / cells_per_rack))
    links = (racks + racks_per_link - 1) // racks_per_link
    out = ['[site]\nname = "bench"\n\n[simulator]\nenabled = false\n\n']
    out.append(f'[[link]]\nname = "pcs1"\nkind = "modbus-tcp"\naddress = "127.0.0.1:{free_port()}"\n'
               f'poll_period_s = {poll_s}\n\n')
    for i in range(links):
        out.append(f'[[link]]\nname = "bms{i + 1}"\nkind = "modbus-tcp"\naddress = "127.0.0.1:{free_port()}"\n'
                   f'poll_period_s = {poll_s}\ntimeout_s = 1.0\n\n')
    out.append('[[pcs]]\nid = "pcs1"\nlink = "pcs1"\nunit_id = 1\nrated_power_kw = 5000.0\n\n')
    rack_lines = ",\n".join(f'  {{ link = "bms{r // racks_per_link + 1}", unit_id = {r % racks_per_link + 1} }}'
                            for r in range(racks))
    out.append(f'[[bess]]\nid = "bess1"\nchemistry = "lfp"\ncell_capacity_ah = 280.0\npcs = "pcs1"\n'
               f'modules_per_rack = {modules}\ncells_per_module = {per_module}\nracks = [\n{rack_lines},\n]\n')
    return "".join(out)


class SimProcess:
    """`python main.py sim --site FILE` in a child process (its CPU is not the ESMS's)."""

    def __init__(self, site_file: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "sim", "--site", str(site_file)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        line = self.proc.stdout.readline()
        if "serving" not in line:
            self.stop()
            raise RuntimeError(f"simulator did not start: {line}{self.proc.stderr.read()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_until(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False
