"""estimate_soc_file: the `estimate-soc` CLI contract (DESIGN.md section 5), bad input and output."""
import csv

import numpy as np
import pytest

from app.core.errors import UserError
from app.estimation.offline import estimate_soc_file

HEADER = "t_s,current_a,voltage_v,temperature_c\n"


def _write(path, text):
    path.write_text(text)
    return str(path)


def _good_rows(n=120, dt=1.0):
    return "".join(f"{k * dt:g},{-2.5 if k > 30 else 0.0},{3.70 - 0.0005 * k:.4f},25.0\n" for k in range(n))


def test_one_output_row_per_input_row_with_irregular_time(tmp_path):
    t = np.cumsum(np.r_[0, np.random.default_rng(0).uniform(0.2, 1.0, 299)])
    body = "".join(f"{x:.3f},-1.0,{3.7 - 0.0002 * k:.4f},24.5\n" for k, x in enumerate(t))
    src = _write(tmp_path / "in.csv", HEADER + body)
    out = tmp_path / "out.csv"
    estimate_soc_file("nmc", 5.0, src, str(out))
    rows = list(csv.reader(out.read_text().splitlines()))
    assert rows[0] == ["t_s", "soc_pct"]
    assert [r[0] for r in rows[1:]] == [f"{x:.3f}" for x in t]
    soc = np.array([float(r[1]) for r in rows[1:]])
    assert np.all((soc >= 0) & (soc <= 100))


def test_columns_in_any_order_extra_ignored(tmp_path):
    body = "".join(f"x,25,{3.3:.3f},{k},0.0\n" for k in range(60))
    src = _write(tmp_path / "in.csv", "note,temperature_c,voltage_v,t_s,current_a\n" + body)
    out = tmp_path / "out.csv"
    estimate_soc_file("lfp", 2.3, src, str(out))
    assert len(out.read_text().splitlines()) == 61


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("t_s,current_a,voltage_v\n0,1,3.3\n", "missing column.*temperature_c"),
        (HEADER + "0,1,3.3,25\n1,abc,3.3,25\n", "column current_a, data row 2: 'abc'"),
        (HEADER + "0,1,3.3,25\n1,1,,25\n", "column voltage_v, data row 2"),
        (HEADER + "0,1,3.3,25\n1,1,nan,25\n", "column voltage_v, data row 2"),
        (HEADER + "0,1,3.3,25\n1,1,3.3,25\n1,1,3.3,25\n", "column t_s, data row 3.*must increase"),
        (HEADER + "5,1,3.3,25\n4,1,3.3,25\n", "column t_s, data row 2"),
        (HEADER, "no data rows"),
        ("", "empty file"),
    ],
)
def test_bad_input_names_the_column_and_row_and_writes_nothing(tmp_path, text, message):
    src = _write(tmp_path / "in.csv", text)
    out = tmp_path / "out.csv"
    with pytest.raises(UserError, match=message):
        estimate_soc_file("nmc", 5.0, src, str(out))
    assert list(tmp_path.iterdir()) == [tmp_path / "in.csv"]


@pytest.mark.parametrize(
    ("chemistry", "capacity", "message"),
    [("lead", 5.0, "unknown chemistry 'lead'"), ("nmc", 0.0, "capacity-ah must be > 0"),
     ("nmc", -3, "capacity-ah must be > 0"), ("nmc", float("nan"), "capacity-ah must be > 0")],
)
def test_bad_arguments_leave_existing_output_untouched(tmp_path, chemistry, capacity, message):
    src = _write(tmp_path / "in.csv", HEADER + _good_rows())
    out = tmp_path / "out.csv"
    out.write_text("previous")
    with pytest.raises(UserError, match=message):
        estimate_soc_file(chemistry, capacity, src, str(out))
    assert out.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


def test_missing_input_or_output_dir_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="cannot read input file"):
        estimate_soc_file("nmc", 5.0, str(tmp_path / "none.csv"), str(tmp_path / "out.csv"))
    src = _write(tmp_path / "in.csv", HEADER + _good_rows())
    with pytest.raises(UserError, match="output directory"):
        estimate_soc_file("nmc", 5.0, src, str(tmp_path / "no" / "out.csv"))


@pytest.mark.parametrize("chemistry", ["lfp", "nmc", "lto", "naion"])
def test_every_builtin_chemistry_runs(tmp_path, chemistry):
    src = _write(tmp_path / "in.csv", HEADER + _good_rows())
    out = tmp_path / "out.csv"
    estimate_soc_file(chemistry, 10.0, src, str(out))
    assert len(out.read_text().splitlines()) == 121
