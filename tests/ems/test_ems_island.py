"""Islanding state machine: grid loss -> black start -> island -> resync -> back to the mode."""
from __future__ import annotations

from app.ems.inputs import EmsInputs
from app.ems.island import Islanding
from app.ems.modes import Manual


def inp(t, grid=True, soc=60.0, load=120.0, pv=20.0, f=50.0):
    return EmsInputs(time_s=t, hour=12.0, max_charge_kw=250, max_discharge_kw=250, soc_pct=soc, load_kw=load,
                     pv_kw=pv, frequency_hz=f, grid_available=grid)


def run(mode, steps):
    state, out = None, []
    for x in steps:
        d = mode.step(x, state)
        state = d.state
        out.append((state.phase, d.setpoint_kw))
    return out


def test_grid_loss_black_start_island_and_resync():
    mode = Islanding(Manual(30.0), isolate_s=0.2, energise_s=2, pickup_kw_per_s=50, grid_stable_s=60, sync_s=1)
    seq = [inp(0), inp(1, grid=False), inp(1.5, grid=False), inp(4, grid=False), inp(5, grid=False),
           inp(7, grid=False), inp(100, grid=False), inp(101), inp(130), inp(161), inp(162.5), inp(163)]
    out = run(mode, seq)
    phases = [p for p, _ in out]
    assert phases == ["connected", "isolating", "energising", "picking_up", "picking_up", "islanded", "islanded",
                      "resync_wait", "resync_wait", "synchronising", "connected", "connected"]
    assert out[0][1] == 30 and out[1][1] == 0 and out[2][1] == 0
    assert out[4][1] == -50           # 1 s of pickup at 50 kW/s
    assert out[6][1] == -100          # battery carries load minus PV
    assert out[8][1] == -100          # island still running while the grid proves stable
    assert out[11][1] == 30           # the mode resumes


def test_no_black_start_when_soc_too_low_and_island_shed_when_empty():
    mode = Islanding(Manual(0.0), black_start_min_soc_pct=10, soc_min_pct=5)
    out = run(mode, [inp(0), inp(1, grid=False, soc=8), inp(2, grid=False, soc=8)])
    assert [p for p, _ in out] == ["connected", "isolating", "shed"]
    out = run(mode, [inp(0), inp(1, grid=False), inp(2, grid=False), inp(5, grid=False), inp(9, grid=False),
                     inp(20, grid=False, soc=4)])
    assert out[-1] == ("shed", 0.0)


def test_grid_out_of_frequency_delays_resync_and_pv_surplus_beyond_limit_is_curtailed():
    mode = Islanding(Manual(0.0), grid_stable_s=10)
    state = None
    for x in (inp(0), inp(1, grid=False), inp(2, grid=False), inp(5, grid=False), inp(9, grid=False)):
        state = mode.step(x, state).state
    assert state.phase == "islanded"
    sunny = mode.step(inp(9.5, grid=False, load=50, pv=400), state)
    assert sunny.setpoint_kw == 250 and "curtail 100 kW of PV" in sunny.why
    s = mode.step(inp(10, f=50.5), sunny.state).state
    s = mode.step(inp(30, f=50.5), s).state
    assert s.phase == "resync_wait" and s.since_s == 30      # the stability timer restarts
    s = mode.step(inp(45, f=50.0), s).state
    assert s.phase == "synchronising"
