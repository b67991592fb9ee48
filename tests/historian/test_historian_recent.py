"""Recent per-step averages: the trailing run of steps every point has data for."""
import numpy as np
import pytest

from app.core.sample import Quality
from app.historian.recent import step_averages
from app.historian.schema import QUALITY_CODE
from app.historian.store import Batch, HistorianStore, ScalarSample

from conftest import T0

GOOD, LOST = QUALITY_CODE[Quality.GOOD], QUALITY_CODE[Quality.COMM_LOST]
STEP = 900.0
START = (T0 // STEP) * STEP            # on a step boundary
END = START + 6 * 3600.0


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """6 h of load (1 sample/min, 10 + minute index) and PV (20.0); PV is COMM_LOST 01:00-01:30."""
    path = tmp_path_factory.mktemp("recent") / "h.sqlite"
    store = HistorianStore(path, block_s=3600)
    b = Batch()
    for i, t in enumerate(np.arange(START, END, 60.0)):
        pv_quality = LOST if 3600 <= t - START < 5400 else GOOD
        b.scalars += [ScalarSample("load", float(t), GOOD, 10.0 + i), ScalarSample("pv", float(t), pv_quality, 20.0)]
    store.write(b)
    store.close()
    return path


def test_averages_per_step_from_after_the_last_gap_of_any_point(db):
    load, pv = step_averages(db, ("load", "pv"), STEP, END, days=1)
    assert load.size == pv.size == 18                   # 01:30 .. 06:00, the steps after the PV gap
    minutes = np.arange(90, 360).reshape(18, 15)
    assert load == pytest.approx(10.0 + minutes.mean(axis=1))
    assert np.all(pv == 20.0)


@pytest.mark.parametrize("points, end", [(("load", "wind"), END), (("load", "pv"), END + 86400 * 3)])
def test_nothing_when_a_point_was_never_recorded_or_nothing_is_recent(db, points, end):
    assert step_averages(db, points, STEP, end, days=1) is None


def test_nothing_without_a_database(tmp_path):
    assert step_averages(tmp_path / "none.sqlite", ("load",), STEP, END, days=1) is None
