import csv
import sys
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from app.core.errors import UserError
from app.historian.export import export, parse_time
from app.historian.store import Batch, HistorianStore, ScalarSample, VectorSample

from conftest import T0

RACK = "site.bess1.rack01.cell_voltages_v"


def _outputs(folder):
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("historian.sqlite"))


@pytest.fixture
def db(db_path):
    store = HistorianStore(db_path, block_s=60)
    for i in range(100):
        b = Batch()
        b.vectors.append(VectorSample(RACK, T0 + i, 0 if i != 5 else 3,
                                      np.array([3.3, 3.301, np.nan if i == 7 else 3.302], np.float32)))
        b.scalars.append(ScalarSample("site.pcs1.active_power_kw", T0 + i, 0, float(i) / 2))
        b.scalars.append(ScalarSample("site.pcs1.mode", T0 + i, 0, f"a,\"b\" {i}"))
        store.write(b)
    store.close()
    return db_path


def test_csv_long_format_with_progress(db, tmp_path):
    out = tmp_path / "x.csv"
    seen = []
    rows = export(db, T0 + 10, T0 + 20, "site.*", out, progress=seen.append)
    assert rows == 10 * 3 + 10 + 10
    assert seen == sorted(seen) and seen[-1] == 1.0
    with open(out, newline="") as f:
        data = list(csv.DictReader(f))
    assert len(data) == rows and list(data[0]) == ["t_s", "time_utc", "point", "cell", "value", "text", "quality"]
    cells = [r for r in data if r["point"] == RACK]
    assert [r["cell"] for r in cells[:3]] == ["1", "2", "3"] and cells[1]["value"] == "3.301"
    assert cells[0]["time_utc"] == datetime.fromtimestamp(T0 + 10, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert [r["value"] for r in data if r["point"] == "site.pcs1.active_power_kw"][:2] == ["5", "5.5"]
    assert [r["text"] for r in data if r["point"] == "site.pcs1.mode"][0] == 'a,"b" 10'
    nan_row = [r for r in cells if float(r["t_s"]) == T0 + 7]
    assert nan_row == []  # outside the range
    assert _outputs(tmp_path) == ["x.csv"]


def test_csv_keeps_quality_and_nan(db, tmp_path):
    out = tmp_path / "y.csv"
    export(db, T0, T0 + 10, RACK.replace("rack01", "rack0?"), out)
    with open(out, newline="") as f:
        data = list(csv.DictReader(f))
    assert {r["quality"] for r in data if float(r["t_s"]) == T0 + 5} == {"COMM_LOST"}
    assert [r["value"] for r in data if float(r["t_s"]) == T0 + 7 and r["cell"] == "3"] == [""]


def test_parquet_when_pyarrow_is_there(db, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "x.parquet"
    rows = export(db, T0, T0 + 100, "site.*", out)
    table = pq.read_table(out)
    assert table.num_rows == rows == 100 * 5
    assert table.column_names == ["t_s", "time_utc", "point", "cell", "value", "text", "quality"]


def test_parquet_without_pyarrow_is_a_clear_error(db, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(UserError, match="pyarrow"):
        export(db, T0, T0 + 100, "site.*", tmp_path / "x.parquet")
    assert _outputs(tmp_path) == []
    assert export(db, T0, T0 + 100, "site.pcs1.*", tmp_path / "x.csv") == 200


@pytest.mark.parametrize("args, match", [
    (dict(out="x.txt"), r"\.csv or \.parquet"),
    (dict(pattern="site.nothing.*"), "site.nothing"),
    (dict(t_to=T0 - 1), "after"),
    (dict(out="missing/x.csv"), "does not exist"),
])
def test_export_errors_write_nothing(db, tmp_path, args, match):
    a = dict(t_from=T0, t_to=T0 + 10, pattern="site.*", out="x.csv") | args
    with pytest.raises(UserError, match=match):
        export(db, a["t_from"], a["t_to"], a["pattern"], tmp_path / a["out"])
    assert _outputs(tmp_path) == []


def test_export_missing_database(tmp_path):
    with pytest.raises(UserError, match="no historian database"):
        export(tmp_path / "none.sqlite", T0, T0 + 1, "*", tmp_path / "x.csv")


def test_parse_time():
    assert parse_time("1700000000") == 1_700_000_000.0
    assert parse_time(" 1700000000.25 ") == 1_700_000_000.25
    assert parse_time("2023-11-14T22:13:20Z") == 1_700_000_000.0
    assert parse_time("2023-11-15T00:13:20+02:00") == 1_700_000_000.0
    local = datetime(2024, 5, 1, 12, 0, 0)
    assert parse_time("2024-05-01T12:00:00") == local.timestamp()
    assert parse_time("2024-05-01") == datetime(2024, 5, 1).timestamp()
    assert parse_time("2024-05-01T12:00:00.5Z") == datetime(2024, 5, 1, 12, tzinfo=timezone.utc).timestamp() + 0.5
    assert datetime(2024, 5, 1, 12) - timedelta(hours=1) < datetime.fromtimestamp(parse_time("2024-05-01T12:00"))


@pytest.mark.parametrize("bad", ["yesterday", "", "2024-13-01", "nan", "inf", "12:00 tomorrow"])
def test_parse_time_names_the_bad_value(bad):
    with pytest.raises(UserError) as err:
        parse_time(bad)
    assert repr(bad) in str(err.value)
