"""Command line: `esms SUB ...` / `python main.py SUB ...` (contracts in DESIGN.md section 5).

Errors a user can cause print one line on stderr and exit 2; nothing half-written.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import runpy
import signal
import sys
import threading
from pathlib import Path

from app.core.errors import UserError
from app.core.paths import EXAMPLE_SITE, ROOT, default_data_dir

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:       # argparse errors: one line, exit 2
        raise UserError(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="esms", description="Energy Storage Management System")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def cmd(name: str, help_: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help_)
        c.add_argument("--data-dir", type=Path, default=None,
                       help="historian, users, audit and settings live here (default: user data dir)")
        return c

    c = cmd("run", "run the application (built-in demo plant without --site)")
    c.add_argument("--site", type=Path)
    c.add_argument("--headless", action="store_true", help="no window; one status line per second")
    c.add_argument("--duration", type=float, help="stop after S seconds")
    c = cmd("sim", "run only the plant simulator servers")
    c.add_argument("--site", type=Path, default=EXAMPLE_SITE)
    c.add_argument("--fault", action="append", default=[], metavar="SPEC",
                   help="inject a plant fault, e.g. cell_drift:rack=site.bess1.rack01,cell=12,rate_v_per_min=0.02 "
                        "(repeatable; kinds: cell_drift internal_short thermal_runaway sensor_stuck sensor_open "
                        "sensor_zero current_offset contactor_welded bms_reboot hvac_fail pcs_trip grid_loss)")
    c.add_argument("--replay", action="append", default=[], metavar="LINK=CAPTURE",
                   help="serve LINK from a capture of its raw traffic instead of the plant (repeatable): "
                        "candump log for can, '<time> <tx|rx> <hex>' lines for ble, modbus-tcp and modbus-rtu")
    c.add_argument("--replay-speed", type=float, default=1.0, metavar="X",
                   help="replay timed captures (can, ble notifications) X times faster (default 1)")
    c.add_argument("--replay-loop", action="store_true", help="start a can capture again when it ends")
    c.add_argument("--duration", type=float, help="stop after S seconds")
    c = cmd("decode", "decode one raw BMS frame to canonical JSON")
    c.add_argument("protocol")
    c.add_argument("hex")
    c.add_argument("--can-id")
    c.add_argument("--variant")
    c = cmd("plan", "dispatch plan for a scenario")
    c.add_argument("--scenario", required=True)
    c.add_argument("--json", action="store_true")
    c = cmd("estimate-soc", "estimate SOC from a one-cell CSV trace")
    c.add_argument("--chemistry", required=True, choices=["lfp", "nmc", "lto", "naion"])
    c.add_argument("--capacity-ah", required=True, type=float)
    c.add_argument("--input", required=True)
    c.add_argument("--output", required=True)
    c = cmd("bench", "run benchmarks/NAME.py and print its JSON figures")
    c.add_argument("name")
    c.add_argument("--json", action="store_true")
    c.add_argument("--cells", type=int)
    c = cmd("export", "export history to CSV/Parquet")
    c.add_argument("--from", dest="t_from", required=True)
    c.add_argument("--to", dest="t_to", required=True)
    c.add_argument("--points", required=True, help="glob over point names")
    c.add_argument("--out", required=True)
    c = cmd("audit", "audit trail tools")
    c.add_argument("action", choices=["verify"])
    for name, owner in (("report", "reporting"), ("field", "field-technician"), ("fleet", "fleet monitoring")):
        c = cmd(name, f"{owner} tools (not implemented yet)")
        c.add_argument("args", nargs=argparse.REMAINDER)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("ESMS_LOG", "WARNING"), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from app.security.transport import SecretRedactor
    SecretRedactor().install()
    try:
        args = _parser().parse_args(argv)
        handler = globals()[f"_cmd_{args.command.replace('-', '_')}"]
        return handler(args) or 0
    except UserError as exc:
        print(f"esms: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _data_dir(args: argparse.Namespace) -> Path:
    return args.data_dir if args.data_dir is not None else default_data_dir()


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _cmd_run(args: argparse.Namespace) -> int:
    from app.core.site import load_site
    from app.runtime import Runtime
    site = load_site(args.site or EXAMPLE_SITE)
    headless = args.headless
    if not headless and not _has_display():
        print("esms: no display found: running headless (status line per second)", file=sys.stderr)
        headless = True
    runtime = Runtime(site, _data_dir(args))
    if not headless:
        from app.qt.app import run_gui
        return run_gui(runtime, args.duration)
    stop = _stop_on_signals()
    runtime.start()
    try:
        ticks = 0
        while not stop.wait(1.0):
            ticks += 1
            print(runtime.status_line(), flush=True)
            if args.duration is not None and ticks >= args.duration:
                break
    finally:
        stuck = runtime.stop()
    return 1 if stuck else 0


def _has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM") or sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _cmd_sim(args: argparse.Namespace) -> int:
    from app.core.clock import ScaledClock, SystemClock
    from app.core.site import load_site
    from app.sim.plant_faults import PlantFaultInjector, parse_fault
    from app.sim.replay import install_replays
    from app.sim.simulator import Simulator
    site = load_site(args.site)
    faults = [parse_fault(spec, site) for spec in args.fault]
    clock = ScaledClock(site.simulator.speed) if site.simulator.speed != 1 else SystemClock()
    sim = Simulator(site, clock)
    replays = install_replays(sim, args.replay, args.replay_speed, args.replay_loop)
    injector = PlantFaultInjector.for_simulator(sim)
    for fault in faults:
        injector.inject(fault)
    try:
        sim.start_endpoints()
    except OSError as exc:
        raise UserError(str(exc)) from None
    stop = _stop_on_signals()
    if args.duration is not None:
        timer = threading.Timer(args.duration, stop.set)
        timer.daemon = True                     # a signal may end the run first: do not wait for the timer
        timer.start()
    notes = {name: f" (replay of {capture})" for name, capture in replays.items()}
    endpoints = ", ".join(f"{link.name}={link.address}{notes.get(link.name, '')}" for link in site.links
                          if link.kind in ("modbus-tcp", "can") or link.name in notes)
    print(f"simulator for '{site.name}' serving {endpoints}", flush=True)
    sim.run(stop)
    return 0


def _cmd_decode(args: argparse.Namespace) -> int:
    from drivers.bms import decode
    try:
        raw = bytes.fromhex(args.hex)
    except ValueError:
        raise UserError(f"HEX is not valid hexadecimal: {args.hex[:40]!r}") from None
    can_id = None
    if args.can_id is not None:
        try:
            can_id = int(args.can_id, 0)
        except ValueError:
            raise UserError(f"--can-id {args.can_id!r} is not a number (use 0x351 or 849)") from None
    print(json.dumps(decode(args.protocol, raw, can_id=can_id, variant=args.variant)))
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from app.ems.plan import plan_file
    print(json.dumps(plan_file(args.scenario)))
    return 0


def _cmd_estimate_soc(args: argparse.Namespace) -> int:
    from app.estimation.offline import estimate_soc_file
    estimate_soc_file(args.chemistry, args.capacity_ah, args.input, args.output)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    script = ROOT / "benchmarks" / f"{args.name}.py"
    if not script.is_file():
        names = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py") if not p.stem.startswith("_"))
        raise UserError(f"no benchmark '{args.name}' (available: {', '.join(names)})")
    argv = [str(script)] + (["--json"] if args.json else []) + (["--cells", str(args.cells)] if args.cells else [])
    saved = sys.argv
    sys.argv = argv
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.argv = saved
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from app.historian.export import export, parse_time
    db = _data_dir(args) / "historian.sqlite"
    if not db.is_file():
        raise UserError(f"no historian database at {db} (use --data-dir)")
    rows = export(db, parse_time(args.t_from), parse_time(args.t_to), args.points, args.out)
    print(f"exported {rows} rows to {args.out}", file=sys.stderr)
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    """`audit verify`: exit 0 when the hash chain is intact, 3 naming the first broken record."""
    from app.security.audit import verify_audit
    ok, message = verify_audit(_data_dir(args))
    print(message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 3


def _not_yet(args: argparse.Namespace) -> int:
    raise UserError(f"'{args.command}' is not implemented yet")


_cmd_report = _cmd_field = _cmd_fleet = _not_yet
