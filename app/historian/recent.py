"""Recent per-step averages of scalar points, e.g. to seed the EMS's load/PV history after a restart
so that MPC can plan at once instead of recording for a day first."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from app.core.errors import UserError
from app.historian.reader import HistorianReader


def step_averages(db_path: str | Path, points: Sequence[str], step_s: float, end: float,
                  days: float) -> list[np.ndarray] | None:
    """Each point's average per epoch-aligned `step_s` bucket over the `days` before `end` (a bucket
    boundary), cut to the trailing run of buckets in which every point has a usable sample; None when
    there is no such run (no database, a point never recorded, nothing recent)."""
    try:
        with HistorianReader(db_path) as reader:
            avgs = [reader.downsample(p, end - days * 86400, end, step_s).vavg for p in points]
    except UserError:
        return None
    missing = np.flatnonzero(~np.all(np.isfinite(avgs), axis=0))
    start = int(missing[-1]) + 1 if missing.size else 0
    return [a[start:] for a in avgs] if start < avgs[0].size else None
