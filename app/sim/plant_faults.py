"""Plant and cell faults for tests, the CLI (`sim --fault SPEC`) and the GUI's training mode.

A fault is written `kind:key=value,...`, e.g. `cell_drift:rack=site.bess1.rack01,cell=12,rate_v_per_min=0.02`
(`FAULT_KINDS` lists the kinds and their keys). `PlantFaultInjector.inject(spec, now)` sets it in the
plant's models and returns an id; `clear(id)` takes it back. The symptom then develops as the plant
steps (a drifting cell, a short heating up, a runaway accelerating). Injecting a kind again on the
same target replaces the earlier fault. Link-level faults (drop, latency, garbage, CRC) are
app/sim/faults.py.
"""
from __future__ import annotations

import itertools
import math
import threading
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from app.core.errors import UserError
from app.core.site import Site
from app.sim.plant import SENSOR_OK, SENSOR_OPEN, SENSOR_STUCK, SENSOR_ZERO, Plant, RackModel

SHORT_DRAIN_C_RATE = 1.0 / 40.0       # default internal short: drains the cell at C/40
DEFAULT_REBOOT_S = 10.0
_POSITIVE = ("ohms", "seconds", "ms")


@dataclass(frozen=True)
class FaultKind:
    """A kind of fault: its target ('site', 'pcs', 'rack', 'cell' or 'link'), what it does, and its
    numeric parameter if it has one, with its unit (`default` None: the key is required; NaN:
    computed, see help)."""

    target: str
    help: str
    param: str = ""
    default: float | None = None
    unit: str = ""


TARGET_KEYS: dict[str, tuple[str, ...]] = {"cell": ("rack", "cell"), "rack": ("rack",), "pcs": ("pcs",),
                                           "site": (), "link": ("link",)}
"""The keys that name a fault's target, by FaultKind.target."""


FAULT_KINDS: dict[str, FaultKind] = {
    "cell_drift": FaultKind("cell", "the cell's voltage drifts at rate_v_per_min (+ over, - undervoltage)",
                            "rate_v_per_min", unit="V/min"),
    "internal_short": FaultKind("cell", "internal short of `ohms` (default: drains the cell at C/40): "
                                "self-heating, voltage sag, fast self-discharge", "ohms", math.nan, "Ω"),
    "thermal_runaway": FaultKind("cell", "runaway onset: dT/dt rising past 1 C/min then 1 C/s, H2/CO in the "
                                 "rack air, voltage collapsing"),
    "sensor_stuck": FaultKind("cell", "the cell's voltage sensor holds its present reading"),
    "sensor_open": FaultKind("cell", "open sense wire: the cell reads the AFE's rail (6.5535 V)"),
    "sensor_zero": FaultKind("cell", "the cell's voltage sensor reads 0 mV"),
    "current_offset": FaultKind("rack", "the rack's current sensor reads `amps` too high", "amps", unit="A"),
    "contactor_welded": FaultKind("rack", "the rack's contactor ignores open commands once closed"),
    "bms_reboot": FaultKind("rack", "the rack's BMS reboots for `seconds`: readings zero, heartbeat "
                            "restarts, contactor drops out", "seconds", DEFAULT_REBOOT_S, "s"),
    "hvac_fail": FaultKind("rack", "the rack's HVAC stops cooling and its fan stops"),
    "pcs_trip": FaultKind("pcs", "the PCS trips: fault state, 0 kW"),
    "grid_loss": FaultKind("site", "the public grid is lost: the site blacks out until the EMS islands it "
                           "(breaker open, PCS grid-forming) or PCS with automatic islanding do"),
}


@dataclass(frozen=True)
class PlantFault:
    """One parsed fault. `str()` gives its spec back."""

    kind: str
    rack: str | None = None
    cell: int | None = None
    pcs: str | None = None
    value: float | None = None     # the kind's parameter (FAULT_KINDS[kind].param)

    @property
    def target(self) -> str:
        """What it acts on, e.g. 'site.bess1.rack01 cell 12', 'site.pcs1', 'site'."""
        if self.pcs:
            return f"site.{self.pcs}"
        if self.rack:
            return self.rack + (f" cell {self.cell}" if self.cell else "")
        return "site"

    def __str__(self) -> str:
        keys = [("rack", self.rack), ("cell", self.cell), ("pcs", self.pcs)]
        param = FAULT_KINDS[self.kind].param
        if param and self.value is not None and not math.isnan(self.value):
            keys.append((param, f"{self.value:g}"))
        body = ",".join(f"{k}={v}" for k, v in keys if v is not None)
        return f"{self.kind}:{body}" if body else self.kind


def parse_fault(spec: str, site: Site | None = None) -> PlantFault:
    """Parse `kind:key=value,...`; with `site`, also check that the rack/cell/PCS exist.
    Raises UserError naming the bad kind, key or value."""
    kind, values = split_spec(spec, FAULT_KINDS)
    fk = FAULT_KINDS[kind]
    rack = values.get("rack")
    if rack is not None and not rack.startswith("site."):
        rack = f"site.{rack}"
    fault = PlantFault(kind, rack=rack, cell=_int(spec, values, "cell"), pcs=values.get("pcs"),
                       value=spec_number(spec, values, fk.param, fk.default) if fk.param else None)
    if site is not None:
        _check_target(spec, fault, site)
    return fault


def split_spec(spec: str, kinds: dict[str, FaultKind]) -> tuple[str, dict[str, str]]:
    """`kind:key=value,...` -> (kind, {key: value}) for a kind of `kinds`, with exactly its target keys
    and parameter (a parameter with a default may be left out). Raises UserError naming what to fix."""
    kind, _, body = spec.strip().partition(":")
    kind = kind.strip()
    if kind not in kinds:
        raise UserError(f"fault '{spec}': unknown kind '{kind}' (one of: {', '.join(kinds)})")
    fk = kinds[kind]
    allowed = list(TARGET_KEYS[fk.target]) + ([fk.param] if fk.param else [])
    values: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in body.split(","))):
        key, eq, value = (s.strip() for s in item.partition("="))
        if key not in allowed:
            raise UserError(f"fault '{spec}': unknown key '{key}' for {kind} "
                            f"(keys: {', '.join(allowed) or 'none'})")
        if not eq or not value:
            raise UserError(f"fault '{spec}': key '{key}' needs a value ({key}=...)")
        values[key] = value
    for key in allowed:
        if key not in values and not (key == fk.param and fk.default is not None):
            raise UserError(f"fault '{spec}': missing key '{key}'")
    return kind, values


def _int(spec: str, values: dict[str, str], key: str) -> int | None:
    if key not in values:
        return None
    try:
        return int(values[key])
    except ValueError:
        raise UserError(f"fault '{spec}': '{key}' must be an integer, got '{values[key]}'") from None


def spec_number(spec: str, values: dict[str, str], key: str, default: float | None) -> float | None:
    """The finite number `values[key]` (> 0 for ohms, seconds and ms), or `default` if absent."""
    if key not in values:
        return default
    try:
        value = float(values[key])
    except ValueError:
        raise UserError(f"fault '{spec}': '{key}' must be a number, got '{values[key]}'") from None
    if not math.isfinite(value):
        raise UserError(f"fault '{spec}': '{key}' must be a finite number, got '{values[key]}'")
    if key in _POSITIVE and value <= 0:
        raise UserError(f"fault '{spec}': '{key}' must be > 0, got '{values[key]}'")
    return value


def _check_target(spec: str, fault: PlantFault, site: Site) -> None:
    if fault.rack is not None:
        racks = {r.path: r for r in site.racks}
        rack = racks.get(fault.rack)
        if rack is None:
            raise UserError(f"fault '{spec}': 'rack' {fault.rack} is not in the site (racks: {', '.join(racks)})")
        if fault.cell is not None and not 1 <= fault.cell <= rack.cell_count:
            raise UserError(f"fault '{spec}': 'cell' must be 1..{rack.cell_count} for {rack.path}, got {fault.cell}")
    if fault.pcs is not None and fault.pcs not in {p.id for p in site.pcs}:
        raise UserError(f"fault '{spec}': 'pcs' {fault.pcs} is not in the site "
                        f"(PCS: {', '.join(p.id for p in site.pcs)})")


@dataclass(frozen=True)
class ActiveFault:
    fault: PlantFault
    injected_at: float          # the `now` given to inject (simulated seconds)


_SENSOR_MODES = {"sensor_stuck": SENSOR_STUCK, "sensor_open": SENSOR_OPEN, "sensor_zero": SENSOR_ZERO}


def _short_s(r: RackModel, i: int, ohms: float) -> float:
    if math.isnan(ohms):
        ohms = float(r.chem.ocv(0.5)) / (SHORT_DRAIN_C_RATE * float(r.capacity_ah[i]))
    return 1.0 / ohms


def _set(plant: Plant, f: PlantFault, on: bool) -> None:
    """Put fault `f` into the plant's models (`on`) or take it out."""
    r = plant.racks[f.rack] if f.rack else None
    i = f.cell - 1 if f.cell else 0
    match f.kind:
        case "cell_drift":
            r.drift_v_per_s[i] = f.value / 60.0 if on else 0.0
            if not on:
                r.drift_v[i] = 0.0
        case "internal_short":
            r.short_s[i] = _short_s(r, i, f.value) if on else 0.0
        case "thermal_runaway":
            r.runaway_t0_c[i] = r.true_temp_c[i] if on else math.nan
            r.dead[i] = False
        case "sensor_stuck" | "sensor_open" | "sensor_zero":
            if on and f.kind == "sensor_stuck":
                r.sensor_hold_v[i] = r.cell_voltages()[i]
            r.sensor_mode[i] = _SENSOR_MODES[f.kind] if on else SENSOR_OK
        case "current_offset":
            r.current_offset_a = f.value if on else 0.0
        case "contactor_welded":
            r.welded = on
            r.drive_contactor()
        case "bms_reboot":
            r.reboot(f.value if on else 0.0)
        case "hvac_fail":
            r.thermal.hvac_enabled = r.thermal.ventilation = not on
        case "pcs_trip":
            if on:
                plant.pcs[f.pcs].trip("trip (injected fault)")
            else:
                plant.pcs[f.pcs].reset()
        case "grid_loss":
            plant.grid_connected = not on


class PlantFaultInjector:
    """Injects and clears plant faults. Any thread may call: `lock` (the simulator's step lock) is
    held while the models change. Use `for_simulator(sim)` for a running simulator."""

    def __init__(self, plant: Plant, lock: AbstractContextManager | None = None) -> None:
        self.plant = plant
        self._lock = lock if lock is not None else nullcontext()
        self._active: dict[int, ActiveFault] = {}
        self._ids = itertools.count(1)
        self._registry_lock = threading.Lock()

    @classmethod
    def for_simulator(cls, sim) -> "PlantFaultInjector":
        """The injector for an app.sim.simulator.Simulator's plant, under its step lock."""
        return cls(sim.plant, sim.lock)

    def inject(self, fault: PlantFault | str, now: float | None = None) -> int:
        """Apply `fault` (a PlantFault or its spec) at `now` (simulated s; default the plant's time);
        returns its id. Raises UserError for a bad spec or target."""
        if isinstance(fault, str):
            fault = parse_fault(fault, self.plant.site)
        else:
            _check_target(str(fault), fault, self.plant.site)
        with self._registry_lock, self._lock:
            for fid, active in list(self._active.items()):
                if (active.fault.kind, active.fault.target) == (fault.kind, fault.target):
                    del self._active[fid]
            _set(self.plant, fault, True)
            fid = next(self._ids)
            self._active[fid] = ActiveFault(fault, self.plant.time_s if now is None else now)
        return fid

    def clear(self, fault_id: int) -> None:
        """Take fault `fault_id` back (a training reset: the cells keep their charge and heat)."""
        with self._registry_lock, self._lock:
            active = self._active.pop(fault_id, None)
            if active is None:
                raise UserError(f"no active plant fault with id {fault_id}")
            _set(self.plant, active.fault, False)

    def clear_all(self) -> None:
        """End every plant fault (Plant.clear_faults)."""
        with self._registry_lock, self._lock:
            self._active.clear()
            self.plant.clear_faults()

    def active(self) -> dict[int, ActiveFault]:
        """The faults in force by id; a BMS reboot drops out once it has ended."""
        with self._registry_lock, self._lock:
            for fid, a in list(self._active.items()):
                if a.fault.kind == "bms_reboot" and self.plant.racks[a.fault.rack].online:
                    del self._active[fid]
            return dict(self._active)
