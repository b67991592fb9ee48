"""Operating modes as pure controllers: behaviour per mode and limits for all of them."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from app.ems.inputs import EmsInputs
from app.ems.modes import (BackupReserve, FrequencySupport, Manual, PeakShaving, RuleBased, Schedule,
                           ScheduleFollowing, SelfConsumption, SolarSmoothing, TouShifting)


def inputs(**kw) -> EmsInputs:
    base = dict(time_s=0.0, hour=12.0, max_charge_kw=250.0, max_discharge_kw=250.0, soc_pct=50.0,
                load_kw=300.0, pv_kw=0.0, frequency_hz=50.0)
    base.update(kw)
    return EmsInputs(**base)


def test_peak_shaving_discharges_the_excess_and_says_why():
    d = PeakShaving(threshold_kw=500, recharge_kw=50).step(inputs(load_kw=512))
    assert d.setpoint_kw == -12
    assert d.why == "peak shaving: import 512 kW > 500 kW limit -> discharge 12.0 kW"


def test_peak_shaving_recharges_only_up_to_the_threshold():
    assert PeakShaving(500, 50).step(inputs(load_kw=480)).setpoint_kw == 20
    assert PeakShaving(500, 50, target_soc_pct=40).step(inputs(load_kw=100)).setpoint_kw == 0


def test_every_mode_is_idle_while_protection_holds():
    held = inputs(load_kw=900, pv_kw=0, max_charge_kw=0, max_discharge_kw=0, frequency_hz=49.5, soc_pct=5)
    modes = [Manual(100), PeakShaving(500, 50), TouShifting(), SelfConsumption(), BackupReserve(),
             FrequencySupport(250), RuleBased(500)]
    assert all(m.step(held).setpoint_kw == 0 for m in modes)


def test_manual_reports_the_limit_that_cut_it():
    d = Manual(300).step(inputs(max_charge_kw=120))
    assert d.setpoint_kw == 120 and "limited by charge limit 120 kW" in d.why


def test_tou_charges_in_cheap_window_and_covers_load_in_peak_window():
    tou = TouShifting(charge_windows=((22, 6),), discharge_windows=((17, 21),), charge_kw=80, discharge_kw=200)
    assert tou.step(inputs(hour=2.0)).setpoint_kw == 80                  # wraps midnight
    assert tou.step(inputs(hour=18.0, load_kw=150)).setpoint_kw == -150  # no export
    assert tou.step(inputs(hour=18.0, soc_pct=15)).setpoint_kw == 0      # discharge floor
    assert tou.step(inputs(hour=12.0)).setpoint_kw == 0


def test_self_consumption_stores_surplus_and_covers_deficit_above_reserve():
    sc = SelfConsumption(reserve_pct=20)
    assert sc.step(inputs(load_kw=100, pv_kw=160)).setpoint_kw == 60
    assert sc.step(inputs(load_kw=100, pv_kw=40)).setpoint_kw == -60
    assert sc.step(inputs(load_kw=100, pv_kw=40, soc_pct=20)).setpoint_kw == 0
    assert "no valid" in sc.step(inputs(load_kw=None)).why


def test_solar_smoothing_limits_the_output_ramp():
    mode = SolarSmoothing(pv_rating_kw=600, ramp_pct_per_min=10)        # 60 kW/min = 1 kW/s
    d0 = mode.step(inputs(time_s=0, pv_kw=100))
    d1 = mode.step(inputs(time_s=10, pv_kw=400, max_charge_kw=400), d0.state)   # +300 kW in 10 s
    assert d1.setpoint_kw == 290 and d1.state == (10, 110)              # battery absorbs the rest
    d2 = mode.step(inputs(time_s=20, pv_kw=0), d1.state)                # cloud: output may fall 10 kW
    assert d2.setpoint_kw == -100 and d2.state == (20, 100)
    d3 = mode.step(inputs(time_s=30, pv_kw=400, max_charge_kw=250), d2.state)
    assert d3.setpoint_kw == 250 and d3.state == (30, 150)              # state keeps the real output


def test_frequency_droop_outside_deadband_and_ffr_step_held():
    fs = FrequencySupport(rated_kw=200, deadband_hz=0.05, droop_pct=4, ffr_trigger_hz=49.7, ffr_hold_s=30)
    assert fs.step(inputs(frequency_hz=50.03)).setpoint_kw == 0
    over = fs.step(inputs(frequency_hz=50.15)).setpoint_kw               # 0.1 Hz / (2 Hz) * 200
    assert np.isclose(over, 10.0)
    assert np.isclose(fs.step(inputs(frequency_hz=49.85)).setpoint_kw, -10.0)
    ffr = fs.step(inputs(time_s=100, frequency_hz=49.65))
    assert ffr.setpoint_kw == -200
    later = fs.step(inputs(time_s=120, frequency_hz=49.99), ffr.state)  # recovered but still held
    assert later.setpoint_kw == -200 and "FFR" in later.why
    assert fs.step(inputs(time_s=131, frequency_hz=49.99), later.state).setpoint_kw == 0


def test_backup_reserve_recharges_below_reserve_only():
    assert BackupReserve(80, 40).step(inputs(soc_pct=70)).setpoint_kw == 40
    assert BackupReserve(80, 40).step(inputs(soc_pct=85)).setpoint_kw == 0


def test_schedule_follows_plan_and_guards_the_planned_peak():
    plan = ScheduleFollowing(Schedule(0.0, 900.0, np.array([50.0, -20.0]), peak_kw=400.0))
    assert plan.step(inputs(time_s=100, load_kw=200)).setpoint_kw == 50
    assert plan.step(inputs(time_s=100, load_kw=380)).setpoint_kw == 20     # charge cut to hold 400
    assert plan.step(inputs(time_s=1000, load_kw=450)).setpoint_kw == -50   # discharge more
    assert plan.step(inputs(time_s=2000)).setpoint_kw == 0                  # past the plan


def test_rules_priority_peak_then_surplus_then_windows():
    r = RuleBased(peak_threshold_kw=300, charge_windows=((0, 6),), discharge_windows=((17, 21),),
                  charge_kw=100, charge_to_pct=90, reserve_pct=20)
    assert r.step(inputs(hour=18, load_kw=350)).setpoint_kw == -50
    assert r.step(inputs(hour=12, load_kw=100, pv_kw=150)).setpoint_kw == 50
    assert r.step(inputs(hour=3, load_kw=250)).setpoint_kw == 50            # no new peak by charging
    assert r.step(inputs(hour=18, load_kw=200)).setpoint_kw == -200


finite = st.floats(-2000, 2000, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(load=st.floats(0, 2000), pv=st.floats(0, 1000), soc=st.floats(0, 100), f=st.floats(49, 51),
       ch=st.floats(0, 300), dis=st.floats(0, 300), hour=st.floats(0, 23.99), manual=finite)
def test_every_mode_stays_within_the_protection_limits(load, pv, soc, f, ch, dis, hour, manual):
    inp = inputs(load_kw=load, pv_kw=pv, soc_pct=soc, frequency_hz=f, max_charge_kw=ch, max_discharge_kw=dis,
                 hour=hour, time_s=5.0)
    modes = [Manual(manual), PeakShaving(500, 50), TouShifting(), SelfConsumption(), BackupReserve(),
             FrequencySupport(250), RuleBased(400), SolarSmoothing(1000),
             ScheduleFollowing(Schedule(0.0, 60.0, np.array([manual]), peak_kw=300.0))]
    for m in modes:
        kw = m.step(inp, (0.0, 0.0) if isinstance(m, SolarSmoothing) else None).setpoint_kw
        assert -dis - 1e-9 <= kw <= ch + 1e-9, m.name
