"""Assemble and run the whole application for a site: DataBus, journal, command router, supervisor,
one driver thread per link, protection, historian, dispatch and (for the demo) the plant simulator
with its training-fault handler (`site.sim`, app/sim/training.py).

Shutdown order: dispatch -> estimation -> protection (leaves every PCS at 0 kW while links still run)
-> drivers -> historian (final flush) -> simulator.
"""
from __future__ import annotations

import logging
import math
import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from app.aggregator import BessAggregator
from app.core.clock import Clock, ScaledClock, SystemClock
from app.core.commands import Command, CommandResult, CommandRouter
from app.core.databus import DataBus
from app.core.events import Event, EventJournal, Severity
from app.core.site import Site
from app.core.supervisor import Supervisor
from app.ems.settings import EmsSettings
from app.ems.worker import EmsThread
from app.estimation.live import EstimationThread
from app.historian.recent import step_averages
from app.historian.writer import HistorianWriter
from app.overrides import PointOverrides
from app.protection.thread import ProtectionThread
from app.security.service import SecurityService, SecuritySettings
from app.sim.simulator import Simulator
from app.sim.training import TrainingFaults
from drivers.registry import build_driver, rack_points

log = logging.getLogger(__name__)

STOP_ORDER = ["ems", "estimation", "protection", "drivers", "historian", "simulator"]
EMS_HISTORY_DAYS = 28          # load/PV history read back for MPC at start (what the EMS keeps)


class Runtime:
    """Everything that runs for one site. Build, `start()`, then `stop()` (ordered)."""

    def __init__(self, site: Site, data_dir: Path, clock: Clock | None = None, dispatch: bool = True,
                 security: SecuritySettings = SecuritySettings(), ems_mode: str = "rules",
                 ems: EmsSettings = EmsSettings(), ems_history: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """``ems_history``: (load kW, PV kW) per EMS step before now, so that MPC can plan at once;
        by default the site meter's from the historian (after a restart), if it has recent steps."""
        self.site = site
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if clock is None:
            clock = ScaledClock(site.simulator.speed) if site.simulator.enabled and site.simulator.speed != 1 \
                else SystemClock()
        self.clock = clock
        self.bus = DataBus()
        self.journal = EventJournal()
        self.router = CommandRouter()
        self.supervisor = Supervisor(self.journal, clock)
        self.simulator = Simulator(site, clock) if site.simulator.enabled else None
        self.training = TrainingFaults(self.simulator, self.router, self.journal, clock) if self.simulator else None
        self.drivers = [build_driver(site, link, self.bus, self.router, self.journal, clock)
                        for link in site.links if link.kind != "sim"]
        self.protection = ProtectionThread(site, self.bus, self.router, self.journal, clock, rack_points(site))
        db = self.data_dir / "historian.sqlite"
        if dispatch and ems_history is None:
            step_s = ems.mpc_step_minutes * 60
            recent = step_averages(db, ("site.meter.load_kw", "site.meter.pv_kw"), step_s,
                                   math.floor(clock.time() / step_s) * step_s, days=EMS_HISTORY_DAYS)
            ems_history = (recent[0], recent[1]) if recent else None
        self.historian = HistorianWriter(db, self.bus, self.journal, clock)
        self.dispatch = EmsThread(site, self.bus, self.router, clock, mode=ems_mode, settings=ems,
                                  history=ems_history, journal=self.journal) if dispatch else None
        self.aggregator = BessAggregator(site, self.bus, clock, sources=self.protection.sources)
        self.overrides = PointOverrides(self.bus, self.router, self.journal, clock)
        self.estimation = EstimationThread(site, self.bus, clock, router=self.router, journal=self.journal)
        self.security = SecurityService(self.data_dir, clock, security)

    def start(self) -> None:
        if self.simulator:
            self.simulator.start_endpoints()          # listening before the drivers first connect
            self.supervisor.start(self.simulator, "simulator")
            self.supervisor.start(self.training, "simulator")
        self.supervisor.start(self.historian, "historian")
        for d in self.drivers:
            self.supervisor.start(d, "drivers")
        self.supervisor.start(self.protection, "protection")
        self.supervisor.start(self.aggregator, "ems")
        self.supervisor.start(self.overrides, "ems")
        self.supervisor.start(self.estimation, "estimation")
        if self.dispatch:
            self.supervisor.start(self.dispatch, "ems")
        self.journal.post(Event(self.clock.time(), "esms", "start",
                                f"ESMS started: site '{self.site.name}', {self.site.cell_count} cells, "
                                f"{len(self.drivers)} links" + (" (simulated plant)" if self.simulator else "")))

    def stop(self) -> list[str]:
        """Ordered shutdown; returns names of threads that did not stop in time."""
        self.journal.post(Event(self.clock.time(), "esms", "stop", "ESMS stopping"))
        stuck = self.supervisor.stop_all(STOP_ORDER)
        self.security.close()
        return stuck

    def emergency_stop(self, user: str) -> list["Future[CommandResult]"]:
        """Every PCS to 0 kW and every rack contactor open, straight to the link threads (not through
        protection, which is told to latch the stop as well). Never waits: returns the futures."""
        commands = [Command(f"site.{p.id}.active_power_setpoint_kw", "write", 0.0, user, "EMERGENCY STOP")
                    for p in self.site.pcs]
        commands += [Command(f"{r.path}.contactor_command", "write", 0, user, "EMERGENCY STOP")
                     for r in self.site.racks]
        commands.append(Command("site.protection", "emergency_stop", None, user, "EMERGENCY STOP"))
        self.journal.post(Event(self.clock.time(), "operator", "emergency_stop",
                                f"EMERGENCY STOP by {user}: all PCS 0 kW, all contactors open", Severity.TRIP))
        return [self.router.submit(c) for c in commands]

    def status_line(self) -> str:
        """One line for headless operation: power, SOC, cell extremes, links, protection, alarms."""
        snap = self.bus.snapshot()

        def val(point: str, fmt: str, default: str = "--") -> str:
            s = snap.get(point)
            if s is None or isinstance(s.value, float) and math.isnan(s.value):
                return default
            text = format(s.value, fmt)
            return text if s.quality.usable else f"{text}({s.quality.value})"

        parts = [time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.clock.time()))]
        for p in self.site.pcs:
            parts.append(f"{p.id} {val(f'site.{p.id}.active_power_kw', '+.1f')} kW")
        for b in self.site.bess:                   # cell extremes and racks online: the BESS aggregate
            socs = [snap[f"{r.path}.soc_pct"].value for r in b.racks if f"{r.path}.soc_pct" in snap]
            lo, hi = val(f"site.{b.id}.min_cell_voltage_v", ".3f"), val(f"site.{b.id}.max_cell_voltage_v", ".3f")
            cells = f"Vcell {lo}..{hi} V" if "--" not in (lo, hi) else "Vcell --"
            soc = f"SOC {np.mean(socs):.1f}%" if socs else "SOC --"
            online = snap.get(f"site.{b.id}.packs_online")
            lost = len(b.racks) - (online.value if online is not None else 0)
            parts.append(f"{b.id} {soc} {cells}" + (f" {lost} racks COMM_LOST/STALE" if lost else ""))
        links = " ".join(f"{link.name}:{val(f'site.links.{link.name}.status', 's', '?')}"
                         for link in self.site.links if link.kind != "sim")
        parts.append(f"links {links}")
        parts.append(f"protection {val('site.protection.state', 's', 'STARTING')}")
        if self.dispatch:
            parts.append(f"ems {val('site.ems.mode', 's', '--')} {val('site.ems.setpoint_kw', '+.1f')} kW")
        summary = self.protection.alarm_summary
        parts.append(f"active alarms {len(summary.active)} ({sum(summary.unacked_by_priority.values())} unack)")
        return " | ".join(parts)
