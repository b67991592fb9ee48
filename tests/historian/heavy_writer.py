"""Subprocess for the kill -9 test: runs a HistorianWriter and publishes as fast as it can.

Prints "committed N" whenever every sample up to number N is known to be committed (two commits
happened after it was published). Usage: python heavy_writer.py DB_PATH
"""
import sys
import threading

import numpy as np

from app.core.clock import SystemClock
from app.core.databus import DataBus
from app.core.events import EventJournal
from app.core.sample import Sample, vector
from app.historian.writer import HistorianWriter

CELLS = 1000


def main(db_path: str) -> None:
    bus, clock = DataBus(), SystemClock()
    writer = HistorianWriter(db_path, bus, EventJournal(), clock, flush_period_s=0.05, block_s=5)
    stop = threading.Event()
    threading.Thread(target=writer.run, args=(stop,), daemon=True).start()
    writer.ready.wait(10)
    published = [-1]

    def report() -> None:
        while True:
            mark, commits = published[0], writer.commits
            while writer.commits < commits + 2:
                stop.wait(0.005)
            print(f"committed {mark}", flush=True)

    threading.Thread(target=report, daemon=True).start()
    noise = np.random.default_rng(0).random(CELLS)
    t0 = clock.time()  # real time: retention runs on the real clock too
    for i in range(10 ** 9):  # 500 samples/s of CELLS cells: heavy but sustainable
        t = t0 + i * 0.01
        bus.publish_many([("site.bess1.rack01.cell_voltages_v", Sample(vector(3.0 + np.roll(noise, i)), t, t, t)),
                          ("site.bess1.rack01.current_a", Sample(float(i), t, t, t))])
        published[0] = i
        if i % 10 == 9:
            stop.wait(0.02)


if __name__ == "__main__":
    main(sys.argv[1])
