"""Limit files: every chemistry loads, overrides by <table>_<key>, errors name key and line."""
from __future__ import annotations

import pytest

from app.core.errors import ConfigError
from app.protection.limit_file import LIMITS_DIR, QUANTITIES, load_limits, parse_limits
from protection_cases import CHEMISTRIES


@pytest.mark.parametrize("chemistry", CHEMISTRIES)
def test_every_chemistry_has_a_full_ordered_ladder(chemistry):
    lim = load_limits(chemistry)
    assert lim.chemistry == chemistry
    assert set(lim.ladders) == set(QUANTITIES)
    for spec in lim.ladders.values():
        sign = 1 if spec.side == "high" else -1
        assert sign * (spec.levels[1] - spec.levels[0]) > 0 < sign * (spec.levels[2] - spec.levels[1])


def test_lfp_never_charges_below_zero_celsius():
    assert load_limits("lfp").ladders["charge_undertemperature"].levels[2] == 0.0


def test_override_replaces_one_value():
    lim = load_limits("lfp", {"cell_overvoltage_trip_v": 3.62, "cell_overvoltage_trip_delay_s": 1.0,
                              "derating_max_charge_crate": 0.3})
    assert lim.ladders["cell_overvoltage"].levels == (3.55, 3.60, 3.62)
    assert lim.ladders["cell_overvoltage"].delays_s[2] == 1.0
    assert lim.derating.max_charge_crate == 0.3


SITE = """[site]
name = "x"

[protection]
period_s = 0.1

[protection.limits]
cell_overvoltage_trip_v = 3.58
cell_overvoltage_bogus_v = 1.0
"""


def test_unknown_override_names_the_site_line_and_key():
    with pytest.raises(ConfigError, match=r"site.toml:9: protection.limits.cell_overvoltage_bogus_v: unknown"):
        load_limits("lfp", {"cell_overvoltage_bogus_v": 1.0}, site_text=SITE, site_source="site.toml")


def test_override_that_breaks_the_rung_order_is_named():
    with pytest.raises(ConfigError, match=r"site.toml:8: protection.limits.cell_overvoltage_trip_v: must be above"):
        load_limits("lfp", {"cell_overvoltage_trip_v": 3.58}, site_text=SITE, site_source="site.toml")


def test_bad_limit_file_names_file_line_and_key():
    text = (LIMITS_DIR / "nmc.toml").read_text().replace("alarm_v = 4.20", "alarm_v = 4.30")
    line = text.splitlines().index("alarm_v = 4.30") + 1
    with pytest.raises(ConfigError, match=rf"nmc.toml:{line + 1}: cell_overvoltage.trip_v: must be above alarm_v"):
        parse_limits(text, "nmc.toml", {})


def test_non_number_in_limit_file_is_rejected():
    text = (LIMITS_DIR / "lfp.toml").read_text().replace("warn_crate = 0.55", 'warn_crate = "fast"')
    with pytest.raises(ConfigError, match=r"charge_overcurrent.warn_crate: expected a number"):
        parse_limits(text, "lfp.toml", {})


def test_derating_table_must_have_one_peak():
    text = (LIMITS_DIR / "lfp.toml").read_text().replace(
        "charge_factors = [0.0, 0.1, 0.3, 1.0, 1.0, 0.5, 0.0]", "charge_factors = [0.0, 1.0, 0.3, 1.0, 1.0, 0.5, 0.0]")
    with pytest.raises(ConfigError, match=r"derating.charge_factors: must rise to a plateau"):
        parse_limits(text, "lfp.toml", {})


def test_unknown_chemistry_is_a_config_error():
    with pytest.raises(ConfigError, match="cannot read limit file for chemistry 'lead'"):
        load_limits("lead")
