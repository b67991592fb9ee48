"""Islanding state machine: grid loss -> black start -> island -> resync -> back to the mode, with the
device states each phase asks for and the status it waits on."""
from __future__ import annotations

from dataclasses import replace

from app.ems.inputs import EmsInputs
from app.ems.island import BREAKER, FEEDER, MODE, Islanding
from app.ems.modes import Manual


def inp(t, grid=True, soc=60.0, load=120.0, pv=20.0, f=50.0, island_f=None, limit=250.0):
    return EmsInputs(time_s=t, hour=12.0, max_charge_kw=limit, max_discharge_kw=limit, soc_pct=soc, load_kw=load,
                     pv_kw=pv, frequency_hz=f if island_f is None else island_f, grid_available=grid,
                     grid_frequency_hz=f if grid else 0.0)


class Devices:
    """A site whose breaker and PCS do what the last decision asked (unless told to ignore it)."""

    def __init__(self, breaker_obeys=True, pcs_obeys=True):
        self.breaker, self.forming = True, False
        self.breaker_obeys, self.pcs_obeys = breaker_obeys, pcs_obeys
        self.asked: list[dict] = []

    def run(self, mode, steps, state=None):
        out = []
        for x in steps:
            d = mode.step(replace(x, breaker_closed=self.breaker, grid_forming=self.forming), state)
            state = d.state
            wanted = dict(d.devices)
            self.asked.append(wanted)
            if self.breaker_obeys and BREAKER in wanted:
                self.breaker = bool(wanted[BREAKER])
            if self.pcs_obeys and MODE in wanted:
                self.forming = bool(wanted[MODE])
            out.append((state.phase, d.setpoint_kw, d))
        return out, state


def test_grid_loss_black_start_island_and_resync():
    mode = Islanding(Manual(30.0), isolate_s=0.2, energise_s=2, pickup_kw_per_s=50, grid_stable_s=60)
    site = Devices()
    seq = [inp(0), inp(1, grid=False), inp(1.5, grid=False), inp(4, grid=False), inp(5, grid=False),
           inp(7, grid=False), inp(100, grid=False), inp(101), inp(130), inp(161), inp(162), inp(163), inp(164)]
    out, _ = site.run(mode, seq)
    assert [p for p, _, _ in out] == [
        "connected", "isolating", "energising", "picking_up", "picking_up", "islanded", "islanded", "resync_wait",
        "resync_wait", "synchronising", "reconnecting", "connected", "connected"]
    kw = [k for _, k, _ in out]
    assert kw[0] == 30 and kw[1] == 0 and kw[2] == 0
    assert kw[4] == -50               # 1 s of pickup at 50 kW/s
    assert kw[6] == -100              # battery carries load minus PV
    assert kw[8] == -100              # island still running while the grid proves stable
    assert kw[12] == 30               # the mode resumes
    asked = site.asked
    assert asked[0] == {}                                                    # connected: devices left alone
    assert asked[1] == {BREAKER: 0, FEEDER: 0}                               # isolate, loads off
    assert asked[2] == {BREAKER: 0, FEEDER: 0, MODE: 1}                      # black start with no load
    assert asked[3] == asked[6] == {BREAKER: 0, FEEDER: 1, MODE: 1}          # loads back on the island
    assert asked[9] == {BREAKER: 1, FEEDER: 1, MODE: 1}                      # close in sync
    assert asked[10] == {BREAKER: 1, FEEDER: 1, MODE: 0}                     # back to grid-following
    assert asked[11] == {} and all(not d.alarm for _, _, d in out)


def test_each_phase_waits_for_the_device_status():
    mode = Islanding(Manual(0.0), grid_stable_s=10, device_timeout_s=5)
    slow = Devices(breaker_obeys=False)
    out, state = slow.run(mode, [inp(0), inp(1, grid=False), inp(3, grid=False)])
    assert [p for p, _, _ in out] == ["connected", "isolating", "isolating"]  # breaker still reads closed
    assert "waiting for the breaker to open" in out[-1][2].why
    slow.breaker = False                                                      # now it opens
    out, state = slow.run(mode, [inp(4, grid=False), inp(5, grid=False)], state)
    assert [p for p, _, _ in out] == ["energising", "energising"]             # PCS forms one step later ...
    out, state = slow.run(mode, [inp(6, grid=False)], state)
    assert out[0][0] == "picking_up"                                          # ... and the 2 s have passed


def test_a_breaker_that_does_not_open_sheds_with_an_alarm():
    mode = Islanding(Manual(0.0), device_timeout_s=5)
    out, _ = Devices(breaker_obeys=False).run(mode, [inp(0), inp(1, grid=False), inp(6, grid=False),
                                                     inp(7, grid=False)])
    assert [p for p, _, _ in out] == ["connected", "isolating", "shed", "shed"]
    shed = out[2][2]
    assert "grid breaker not reported open within 5 s" in shed.alarm and shed.setpoint_kw == 0
    assert "grid breaker did not open" in out[3][2].why and not out[3][2].alarm
    assert dict(shed.devices) == {BREAKER: 0, FEEDER: 0, MODE: 0}


def test_a_pcs_that_does_not_form_the_island_sheds_with_an_alarm():
    mode = Islanding(Manual(0.0), device_timeout_s=5)
    out, _ = Devices(pcs_obeys=False).run(mode, [inp(0), inp(1, grid=False), inp(2, grid=False),
                                                 inp(4, grid=False), inp(7.5, grid=False)])
    assert [p for p, _, _ in out] == ["connected", "isolating", "energising", "energising", "shed"]
    assert "no PCS reported grid-forming" in out[-1][2].alarm


def test_breaker_closes_only_with_the_island_in_sync_and_a_refused_close_retries():
    mode = Islanding(Manual(0.0), grid_stable_s=10, device_timeout_s=5)
    site = Devices()
    out, state = site.run(mode, [inp(0), inp(1, grid=False), inp(2, grid=False), inp(5, grid=False),
                                 inp(9, grid=False)])
    assert state.phase == "islanded"
    out, state = site.run(mode, [inp(10, island_f=49.8), inp(25, island_f=49.8)], state)
    assert [p for p, _, _ in out] == ["resync_wait", "resync_wait"]
    assert "waiting for the island (49.80 Hz) within 0.1 Hz of the grid (50.00 Hz)" in out[-1][2].why
    assert site.asked[-1][BREAKER] == 0                                      # no close out of sync
    site.breaker_obeys = False                                               # the sync check refuses the close
    out, state = site.run(mode, [inp(26, island_f=49.95), inp(30), inp(31.5)], state)
    assert [p for p, _, _ in out] == ["synchronising", "synchronising", "resync_wait"]
    assert site.asked[-2][BREAKER] == 1 and site.asked[-1][BREAKER] == 0
    assert "grid breaker not reported closed within 5 s" in out[-1][2].alarm
    site.breaker_obeys = True
    out, state = site.run(mode, [inp(42), inp(43), inp(44)], state)
    assert [p for p, _, _ in out] == ["synchronising", "reconnecting", "connected"]


def test_no_black_start_when_soc_too_low_and_island_shed_when_empty():
    mode = Islanding(Manual(0.0), black_start_min_soc_pct=10, soc_min_pct=5)
    out, _ = Devices().run(mode, [inp(0), inp(1, grid=False, soc=8), inp(2, grid=False, soc=8)])
    assert [p for p, _, _ in out] == ["connected", "isolating", "shed"]
    assert "SOC 8.0 % too low" in out[-1][2].why
    out, _ = Devices().run(mode, [inp(0), inp(1, grid=False), inp(2, grid=False), inp(5, grid=False),
                                  inp(9, grid=False), inp(20, grid=False, soc=4)])
    assert out[-1][:2] == ("shed", 0.0)
    assert dict(out[-1][2].devices) == {BREAKER: 0, FEEDER: 0, MODE: 0}


def test_no_black_start_while_protection_holds_every_pcs_and_island_shed_on_a_hold():
    mode = Islanding(Manual(0.0))
    out, _ = Devices().run(mode, [inp(0), inp(1, grid=False, limit=0.0), inp(2, grid=False, limit=0.0)])
    assert out[-1][0] == "shed" and "no PCS free (protection hold)" in out[-1][2].why
    site = Devices()
    out, state = site.run(mode, [inp(0), inp(1, grid=False), inp(2, grid=False), inp(5, grid=False),
                                 inp(9, grid=False)])
    assert state.phase == "islanded"
    out, state = site.run(mode, [inp(10, grid=False, limit=0.0)], state)
    assert out[0][0] == "shed" and site.asked[-1] == {BREAKER: 0, FEEDER: 0, MODE: 0}


def test_an_island_that_stops_forming_is_shed_with_an_alarm_and_resyncs_onto_a_dead_bus():
    mode = Islanding(Manual(0.0), grid_stable_s=10)
    site = Devices()
    _, state = site.run(mode, [inp(0), inp(1, grid=False), inp(2, grid=False), inp(5, grid=False),
                               inp(9, grid=False)])
    site.forming = False                                                     # e.g. contactors opened
    site.pcs_obeys = False
    out, state = site.run(mode, [inp(10, grid=False)], state)
    assert out[0][0] == "shed" and "island lost" in out[0][2].alarm
    site.pcs_obeys = True
    out, state = site.run(mode, [inp(20), inp(31, island_f=0.0), inp(32), inp(33)], state)
    assert [p for p, _, _ in out] == ["resync_wait", "synchronising", "reconnecting", "connected"]
    assert site.asked[-4] == {BREAKER: 0, FEEDER: 0, MODE: 0}                # down until the grid is stable
    assert site.asked[-3] == {BREAKER: 1, FEEDER: 0, MODE: 0}                # dead-bus close, loads still off
    assert site.asked[-2] == {BREAKER: 1, FEEDER: 1, MODE: 0}


def test_grid_out_of_frequency_delays_resync_and_pv_surplus_beyond_limit_is_curtailed():
    mode = Islanding(Manual(0.0), grid_stable_s=10)
    site = Devices()
    _, state = site.run(mode, [inp(0), inp(1, grid=False), inp(2, grid=False), inp(5, grid=False),
                               inp(9, grid=False)])
    assert state.phase == "islanded"
    sunny = mode.step(replace(inp(9.5, grid=False, load=50, pv=400), breaker_closed=False, grid_forming=True), state)
    assert sunny.setpoint_kw == 250 and "curtail 100 kW of PV" in sunny.why
    out, state = site.run(mode, [inp(10, f=50.5, island_f=50.0), inp(30, f=50.5, island_f=50.0)], sunny.state)
    assert state.phase == "resync_wait" and state.since_s == 30      # the stability timer restarts
    out, state = site.run(mode, [inp(45)], state)
    assert state.phase == "synchronising"
