import threading

from app.core.events import EventJournal, Severity
from app.core.supervisor import Supervisor
from support import wait_for


class Flaky:
    """Raises on its first two runs, then runs until stopped."""

    def __init__(self, name="flaky"):
        self.name = name
        self.runs = 0
        self.stopped_hook = threading.Event()

    def run(self, stop):
        self.runs += 1
        if self.runs <= 2:
            raise ValueError(f"boom {self.runs}")
        stop.wait()

    def on_stopped(self):
        self.stopped_hook.set()


def test_crashing_worker_is_restarted_with_an_alarm_event():
    journal = EventJournal()
    sup = Supervisor(journal, backoff_s=0.01)
    w = Flaky()
    sup.start(w, "drivers")
    wait_for(lambda: w.runs == 3, what="third run")
    crashes = [e for e in journal.since(0) if e.kind == "thread_crash"]
    assert len(crashes) == 2 and all(e.severity == Severity.ALARM for e in crashes)
    assert "boom 1" in crashes[0].message and crashes[0].source == "thread.flaky"
    assert sup.restarts("flaky") == 2
    assert sup.stop_all(["drivers"]) == []
    assert w.stopped_hook.is_set()


def test_shutdown_follows_the_stage_order():
    order = []

    class Recorder:
        def __init__(self, name):
            self.name = name

        def run(self, stop):
            stop.wait()

        def on_stopped(self):
            order.append(self.name)

    sup = Supervisor(EventJournal())
    for name, stage in (("hist", "historian"), ("drv", "drivers"), ("prot", "protection"), ("ems", "ems")):
        sup.start(Recorder(name), stage)
    assert sorted(sup.names) == ["drv", "ems", "hist", "prot"]
    assert sup.stop_all(["ems", "protection", "drivers", "historian"]) == []
    assert order == ["ems", "prot", "drv", "hist"]


def test_worker_returning_early_counts_as_a_crash():
    journal = EventJournal()
    sup = Supervisor(journal, backoff_s=0.01)

    class Quitter:
        name = "quitter"
        calls = 0

        def run(self, stop):
            Quitter.calls += 1
            if Quitter.calls > 1:
                stop.wait()

    sup.start(Quitter(), "x")
    wait_for(lambda: Quitter.calls >= 2)
    assert any("returned before stop" in e.message for e in journal.since(0))
    sup.stop_all([])
