"""CLI contracts of DESIGN.md section 5 that the skeleton owns: run/sim/bench/export plumbing, errors
exit 2 with one line on stderr and no traceback."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from support import free_port, site_text

ROOT = Path(__file__).resolve().parents[2]


def esms(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_headless_run_prints_one_status_line_per_second_and_exits_0(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text(site_text(free_port(), free_port(), poll_s=0.5))
    proc = esms("run", "--site", str(site), "--headless", "--duration", "4", "--data-dir", str(tmp_path / "d"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 4
    assert "bess1 SOC" in lines[-1] and "links bms1:ONLINE pcs1:ONLINE" in lines[-1]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \| ", lines[-1])       # local time first
    assert (tmp_path / "d" / "historian.sqlite").is_file()


def test_run_without_display_falls_back_to_headless_with_a_notice(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text(site_text(free_port(), free_port(), poll_s=0.5))
    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "run", "--site", str(site), "--duration", "2",
                           "--data-dir", str(tmp_path / "d")], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "no display" in proc.stderr and len(proc.stdout.strip().splitlines()) == 2


def test_bad_site_file_exits_2_naming_key_and_line(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text(site_text(free_port(), free_port()).replace('chemistry = "lfp"', 'chemistry = "lead-acid"'))
    line = _one_line_error(esms("run", "--site", str(site), "--headless", "--duration", "1"))
    assert "bess[0].chemistry" in line and f"{site}:" in line


@pytest.mark.parametrize("args,needle", [
    (["decode", "jbd", "zz"], "not valid hexadecimal"),
    (["decode", "jbd", "DD0300"], ""),
    (["decode", "pylon-can", "0000", "--can-id", "banana"], "--can-id"),
    (["bench", "no-such-bench", "--json"], "no benchmark 'no-such-bench'"),
    (["audit", "verify"], ""),
    (["fleet"], "not implemented yet"),
    (["frobnicate"], "invalid choice"),
])
def test_user_errors_exit_2_with_one_line(args, needle, tmp_path):
    line = _one_line_error(esms(*args, "--data-dir", str(tmp_path)) if args[0] not in ("frobnicate",)
                           else esms(*args))
    assert needle in line


def test_sim_serves_until_its_duration_and_reports_endpoints(tmp_path):
    site = tmp_path / "site.toml"
    bms, pcs = free_port(), free_port()
    site.write_text(site_text(bms, pcs))
    proc = esms("sim", "--site", str(site), "--duration", "1")
    assert proc.returncode == 0, proc.stderr
    assert f"bms1=127.0.0.1:{bms}" in proc.stdout and f"pcs1=127.0.0.1:{pcs}" in proc.stdout


def test_sim_reports_a_busy_port_as_a_user_error(tmp_path):
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        site = tmp_path / "site.toml"
        site.write_text(site_text(busy.getsockname()[1], free_port()))
        line = _one_line_error(esms("sim", "--site", str(site), "--duration", "1"))
    assert "cannot listen" in line


def test_sim_injects_plant_faults_and_refuses_a_bad_spec(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text(site_text(free_port(), free_port()))
    ok = esms("sim", "--site", str(site), "--duration", "1",
              "--fault", "cell_drift:rack=site.bess1.rack01,cell=3,rate_v_per_min=0.02", "--fault", "grid_loss")
    assert ok.returncode == 0, ok.stderr
    line = _one_line_error(esms("sim", "--site", str(site), "--duration", "1", "--fault", "cell_drift:rack=nope"))
    assert "cell_drift" in line
