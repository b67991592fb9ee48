"""After a restart the EMS reads the site meter's recent load and PV back from the historian, so MPC
plans at once instead of running the rules for a day while it records."""
import math
import time

import numpy as np

from app.core.sample import Quality
from app.historian.schema import QUALITY_CODE
from app.historian.store import Batch, HistorianStore, ScalarSample
from app.runtime import Runtime
from support import make_site, wait_for

GOOD = QUALITY_CODE[Quality.GOOD]


def _why(rt: Runtime) -> str:
    s = rt.bus.get("site.ems.why")
    return s.value if s is not None else ""


def test_mpc_plans_at_once_from_the_historians_load_and_pv(tmp_path):
    site = make_site(tmp_path, poll_s=0.2)
    data = tmp_path / "data"
    data.mkdir()
    end = math.floor(time.time() / 900.0) * 900.0
    store = HistorianStore(data / "historian.sqlite", block_s=3600)
    batch = Batch()
    for t in np.arange(end - 26 * 3600.0, end, 60.0):          # 26 h, one sample a minute
        batch.scalars += [ScalarSample("site.meter.load_kw", float(t), GOOD, 3.0),
                          ScalarSample("site.meter.pv_kw", float(t), GOOD, 0.0)]
    store.write(batch)
    store.close()
    rt = Runtime(site, data, ems_mode="mpc")
    rt.start()
    try:
        wait_for(lambda: "MPC plan" in _why(rt), timeout=15, what="an MPC plan", journal=rt.journal)
    finally:
        assert rt.stop() == []


def test_without_history_mpc_runs_the_rules_first(tmp_path):
    rt = Runtime(make_site(tmp_path, poll_s=0.2), tmp_path / "data", ems_mode="mpc")
    rt.start()
    try:
        wait_for(lambda: _why(rt).startswith("rules"), timeout=15, what="the rules fallback", journal=rt.journal)
    finally:
        assert rt.stop() == []
