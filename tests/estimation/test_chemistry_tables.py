"""Chemistry tables: interpolation properties, built-in sources, custom TOML loading."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.chemistry import BUILTIN_CHEMISTRIES, get_chemistry, load_chemistry
from app.core.chemistry.table import DATA_DIR
from app.core.errors import UserError

socs = st.floats(min_value=-0.5, max_value=1.5, allow_nan=False)
temps = st.floats(min_value=-30, max_value=60, allow_nan=False)
names = st.sampled_from(BUILTIN_CHEMISTRIES)


@settings(max_examples=200, deadline=None)
@given(names, socs, socs, temps)
def test_ocv_is_monotone_in_soc(name, a, b, temp):
    chem = get_chemistry(name)
    lo, hi = sorted((a, b))
    assert chem.ocv(lo, temp) <= chem.ocv(hi, temp)
    assert chem.ocv_slope(lo, temp) >= 0


@settings(max_examples=200, deadline=None)
@given(names, socs, temps)
def test_ocv_stays_in_table_bounds_and_clamps(name, soc, temp):
    chem = get_chemistry(name)
    v = chem.ocv(soc, temp)
    assert chem.ocv_v.min() <= v <= chem.ocv_v.max()
    assert v == pytest.approx(chem.ocv(min(max(soc, 0.0), 1.0), temp))


@settings(max_examples=200, deadline=None)
@given(names, st.floats(min_value=0, max_value=1), temps)
def test_soc_from_ocv_inverts_ocv(name, soc, temp):
    chem = get_chemistry(name)
    assert chem.soc_from_ocv(chem.ocv(soc, temp), temp) == pytest.approx(soc, abs=1e-6)


@pytest.mark.parametrize("name", BUILTIN_CHEMISTRIES)
def test_builtin_tables_are_vectorised_and_sane(name):
    chem = get_chemistry(name)
    soc = np.linspace(0, 1, 50_000)
    v = chem.ocv(soc, np.full(soc.shape, 25.0))
    assert v.shape == soc.shape and np.all(np.diff(v) >= 0)
    assert chem.v_min <= v[0] and v[-1] <= chem.v_max + 0.01
    assert chem.resistance_scale(-10) >= chem.resistance_scale(25) >= chem.resistance_scale(45)
    assert 0.5 < chem.capacity_factor(-10) <= chem.capacity_factor(25) == pytest.approx(1.0)


def test_pybamm_derived_curves_match_their_parameter_sets():
    # PyBaMM's SOC window puts 0 % and 100 % at the voltage cut-offs of Prada2013 and Chen2020
    lfp, nmc = get_chemistry("lfp"), get_chemistry("nmc")
    assert lfp.ocv([0, 1]) == pytest.approx([2.0, 3.6], abs=1e-4)
    assert nmc.ocv([0, 1]) == pytest.approx([2.5, 4.2], abs=1e-4)
    # the LFP plateau: 45..70 % SOC spans only ~20 mV
    assert lfp.ocv(0.70) - lfp.ocv(0.45) < 0.03


def test_unknown_chemistry_names_the_choices():
    with pytest.raises(UserError, match="lfp, nmc, lto, naion"):
        get_chemistry("lead-acid")


def _custom_toml(**overrides):
    text = (DATA_DIR / "nmc.toml").read_text()
    for key, value in overrides.items():
        text = text.replace(key, value, 1)
    return text


def test_custom_chemistry_loads_from_toml(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(_custom_toml(**{'name = "nmc"': 'name = "mine"'}))
    chem = load_chemistry(path)
    assert chem.name == "mine"
    assert chem.ocv(0.5) == pytest.approx(get_chemistry("nmc").ocv(0.5))


def test_custom_chemistry_with_temperature_rows_interpolates(tmp_path):
    path = tmp_path / "two_temps.toml"
    path.write_text(
        'name = "t"\nv_min = 2.0\nv_max = 4.0\nhysteresis_v = 0.0\n'
        "[ocv]\ntemperatures_c = [0.0, 40.0]\nsoc = [0.0, 1.0]\nvoltage_v = [[3.0, 3.9], [3.1, 4.0]]\n"
        "[resistance]\nr0_ohm_ah = 0.1\nr1_ohm_ah = 0.05\ntau1_s = 30.0\nr2_ohm_ah = 0.05\ntau2_s = 300.0\n"
        "temperatures_c = [25.0]\nfactor = [1.0]\n[capacity]\ntemperatures_c = [25.0]\nfactor = [1.0]\n"
    )
    chem = load_chemistry(path)
    assert chem.ocv([0.5, 0.5, 0.5], [-10.0, 20.0, 50.0]) == pytest.approx([3.45, 3.50, 3.55])
    assert chem.soc_from_ocv(3.5, 20.0) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("v_min = 2.5", "v_min = 'low'", "'v_min' must be a number"),
        ("r0_ohm_ah = ", "r0_ohm_ah = -1 #", "'r0_ohm_ah' must be > 0"),
        ("[capacity]", "[capacityx]", r"missing table \[capacity\]"),
        ("soc = [\n    0.000, 0.005", "soc = [\n    0.000, 0.000", "'soc' must be strictly increasing"),
    ],
)
def test_bad_custom_chemistry_names_the_key(tmp_path, old, new, message):
    path = tmp_path / "bad.toml"
    path.write_text(_custom_toml(**{old: new}))
    with pytest.raises(UserError, match=message):
        load_chemistry(path)


def test_missing_chemistry_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="cannot read chemistry file"):
        load_chemistry(tmp_path / "nope.toml")
