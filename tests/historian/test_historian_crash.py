"""kill -9 while writing heavily: the database opens, passes integrity_check and keeps every sample
up to the last batch known to be committed."""
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

from app.historian.reader import HistorianReader
from app.historian.store import HistorianStore

ROOT = Path(__file__).resolve().parents[2]


def test_sigkill_mid_batch_loses_only_uncommitted(db_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("heavy_writer.py")), str(db_path)],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    watchdog = threading.Timer(60, proc.kill)  # never hang the suite if the child stops printing
    watchdog.start()
    try:
        marks = []
        for line in proc.stdout:  # a line per confirmed commit; kill after a dozen, mid-batch
            marks.append(int(line.split()[1]))
            if len(marks) >= 8 and marks[-1] > 500:
                break
        proc.send_signal(signal.SIGKILL)
    finally:
        watchdog.cancel()
        watchdog.join()
        proc.kill()
        proc.wait(20)
        proc.stdout.close()
    last = marks[-1]
    assert last > 0, proc.returncode
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    with HistorianReader(db_path) as r:  # readable as left by the kill, open block included
        current = r.raw("site.bess1.rack01.current_a", 0.0, 4e9)
        assert np.array_equal(current.value[:last + 1], np.arange(last + 1.0))
        cell = r.raw("site.bess1.rack01.cell_voltages_v", 0.0, 4e9, cell=1000)
        assert len(cell.t) > last
    store = HistorianStore(db_path, block_s=5)  # the next writer seals what was left open
    assert store.recover() in (0, 1)  # 1 unless the kill came right after a block was sealed
    store.close()
    with HistorianReader(db_path) as r:
        cell = r.raw("site.bess1.rack01.cell_voltages_v", 0.0, 4e9, cell=1000)
        noise = np.random.default_rng(0).random(1000)
        expect = np.array([np.roll(noise, i)[999] for i in range(last + 1)]) + 3.0
        assert np.allclose(cell.value[:last + 1], expect, atol=0.0005 + 1e-6)
