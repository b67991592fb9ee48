"""`estimate-soc` on a CSV file (DESIGN.md section 5): EKF forward pass + Rauch-Tung-Striebel smoother.

The file is the whole record, so every row's SOC uses all samples (before and after it): the
smoother carries a later end-of-charge or rest correction back to the start of the trace. The
filter steps on ~10 s blocks of rows (charge-conserving means), rows are filled in between.
"""
from __future__ import annotations

import csv
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from app.core.chemistry import get_chemistry
from app.core.errors import UserError
from app.estimation.soc import SocEstimator

INPUT_COLUMNS = ("t_s", "current_a", "voltage_v", "temperature_c")
BLOCK_S = 10.0  # filter update period for fast-sampled files


def read_trace(input_path: str) -> tuple[list[str], np.ndarray]:
    """Read and validate the input CSV; returns the t_s strings as written and a (rows, 4) array
    in INPUT_COLUMNS order. Leading lines starting with '#' are comments; extra columns are ignored."""
    path = Path(input_path)
    try:
        fh = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read input file {input_path}: {exc.strerror}") from None
    with fh:
        reader = csv.reader(line for line in fh if not line.startswith("#"))
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise UserError(f"{input_path}: empty file, expected header {','.join(INPUT_COLUMNS)}") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise UserError(f"{input_path}: unreadable CSV header ({exc})") from None
        missing = [c for c in INPUT_COLUMNS if c not in header]
        if missing:
            raise UserError(f"{input_path}: missing column(s) {', '.join(missing)} (need {','.join(INPUT_COLUMNS)})")
        index = [header.index(c) for c in INPUT_COLUMNS]
        times: list[str] = []
        values: list[list[float]] = []
        try:
            for row in reader:
                if not row or all(not f.strip() for f in row):
                    continue
                parsed = []
                for col, i in zip(INPUT_COLUMNS, index, strict=True):
                    field = row[i].strip() if i < len(row) else ""
                    try:
                        value = float(field)
                    except ValueError:
                        value = math.nan
                    if not math.isfinite(value):
                        raise UserError(f"{input_path}: column {col}, data row {len(values) + 1}: "
                                        f"'{field}' is not a finite number")
                    parsed.append(value)
                t_text = row[index[0]].strip()
                if values and parsed[0] <= values[-1][0]:
                    raise UserError(f"{input_path}: column t_s, data row {len(values) + 1}: time {t_text} "
                                    f"is not after the previous row's {times[-1]} (t_s must increase)")
                times.append(t_text)
                values.append(parsed)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise UserError(f"{input_path}: unreadable CSV near line {reader.line_num} ({exc})") from None
    if not values:
        raise UserError(f"{input_path}: no data rows")
    return times, np.asarray(values)


def blocks(t_s: np.ndarray, block_s: float) -> np.ndarray:
    """Index of the last row of each block: row 0 alone, then runs of rows that end at least
    `block_s` seconds after the previous block's end (the last block may be shorter)."""
    ends = [0]
    last = t_s[0]
    for k in range(1, len(t_s)):
        if t_s[k] - last >= block_s or k == len(t_s) - 1:
            ends.append(k)
            last = t_s[k]
    return np.unique(ends)


def estimate_soc_trace(chemistry: str, capacity_ah: float, t_s, current_a, voltage_v, temp_c,
                       block_s: float = BLOCK_S) -> np.ndarray:
    """Smoothed SOC fraction per sample of one cell's trace (arrays of equal length).

    The filter runs on blocks of about `block_s` seconds: each block's charge-weighted mean current
    (so coulomb counting stays exact) and mean voltage and temperature. Row SOCs inside a block
    follow the measured charge, corrected by the smoothed offset and spread so they meet the
    smoothed SOC at both block ends.
    """
    t, cur, volt, temp = (np.asarray(a, dtype=float) for a in (t_s, current_a, voltage_v, temp_c))
    dt = np.diff(t, prepend=t[0])
    ends = blocks(t, block_s)
    starts = np.r_[0, ends[:-1] + 1]
    charge = np.add.reduceat(cur * dt, starts)  # A*s per block (row 0's dt is 0)
    block_dt = np.diff(t[ends], prepend=t[0])
    rows = np.diff(ends, prepend=-1)
    mean_i = np.where(block_dt > 0, charge / np.where(block_dt > 0, block_dt, 1.0), cur[ends])
    mean_v = np.add.reduceat(volt, starts) / rows
    mean_t = np.add.reduceat(temp, starts) / rows

    est = SocEstimator(chemistry, capacity_ah, 1)
    u = est.inputs(*(a[:, None] for a in (block_dt, mean_i, mean_v, mean_t)))
    keys = [k for k, v in u.items() if isinstance(v, np.ndarray)]
    pins = (u["pin_var"] < 1.0)[:, 0]
    steps = [est.step_inputs({**{k: u[k][i] for k in keys}, "any_pin": pins[i]}) for i in range(len(ends))]
    # (blocks, 4[, 4]) for the one cell
    F = np.zeros((len(steps), 4, 4))
    F[:, np.arange(4), np.arange(4)] = np.stack([s.decay[:, 0] for s in steps])
    F[:, :, 3] += np.stack([s.coupling[:, 0] for s in steps])
    x_prior, x_post = (np.stack([getattr(s, k)[:, 0] for s in steps]) for k in ("x_prior", "x_post"))
    p_prior, p_post = (np.stack([getattr(s, k)[:, :, 0] for s in steps]) for k in ("p_prior", "p_post"))
    smooth = rts_smooth(F, x_prior, p_prior, x_post, p_post)

    # rows: SOC at the previous block end + counted charge (less the offset), then the residual
    # to this block's smoothed end SOC spread over the block's time
    block = np.repeat(np.arange(len(ends)), rows)
    prev = np.maximum(block - 1, 0)
    counted = (cur - smooth[block, 3]) * dt / (3600.0 * capacity_ah)
    within = np.cumsum(counted) - np.repeat(np.cumsum(counted)[starts] - counted[starts], rows)
    elapsed = t - t[ends[prev]]
    share = np.where(block_dt[block] > 0, elapsed / np.where(block_dt[block] > 0, block_dt[block], 1.0), 1.0)
    residual = smooth[block, 0] - (smooth[prev, 0] + within[ends][block])
    return (smooth[prev, 0] + within + share * residual).clip(0.0, 1.0)


def rts_smooth(F, x_prior, p_prior, x_post, p_post) -> np.ndarray:
    """Rauch-Tung-Striebel smoothed states (rows, n_states) from a forward filter's steps."""
    # gain C_k = P_post[k] F[k+1]^T P_prior[k+1]^-1, all at once: C_k^T = P_prior^-1 (F P_post)
    gains = np.linalg.solve(p_prior[1:], F[1:] @ p_post[:-1]).transpose(0, 2, 1)
    xs = np.empty_like(x_post)
    xs[-1] = x_post[-1]
    for k in range(len(xs) - 2, -1, -1):
        xs[k] = x_post[k] + gains[k] @ (xs[k + 1] - x_prior[k + 1])
    return xs


def estimate_soc_file(chemistry: str, capacity_ah: float, input_path: str, output_path: str) -> None:
    """Read IN (t_s,current_a,voltage_v,temperature_c; one cell), write OUT (t_s,soc_pct), one row
    per input row. Bad input raises UserError naming the column/row; OUT is written atomically."""
    get_chemistry(chemistry)
    try:
        capacity = float(capacity_ah)
    except (TypeError, ValueError):
        raise UserError(f"capacity-ah must be a number, got {capacity_ah!r}") from None
    if not math.isfinite(capacity) or capacity <= 0:
        raise UserError(f"capacity-ah must be > 0, got {capacity_ah}")
    out_dir = Path(output_path).resolve().parent
    if not out_dir.is_dir():
        raise UserError(f"output directory {out_dir} does not exist")
    times, data = read_trace(input_path)
    soc = estimate_soc_trace(chemistry, capacity, data[:, 0], data[:, 1], data[:, 2], data[:, 3])
    fd, tmp = tempfile.mkstemp(prefix=".soc-", suffix=".csv.tmp", dir=out_dir)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            fh.write("t_s,soc_pct\n")
            fh.writelines(f"{t},{100.0 * s:.3f}\n" for t, s in zip(times, soc, strict=True))
        os.replace(tmp, output_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
