"""Site measurements: the batch format, its validation, and 15-minute intervals from it.

One code path for ``POST /v1/sites/{id}/measurements`` (JSON) and ``vpp measurements import``
(CSV): both hand their rows to :func:`validate_batch`, which checks every row against the
site's own limits and raises one :class:`MeasurementError` naming every bad row, field,
value and allowed range - or returns the batch, ready to store. Nothing here touches a
database.

A **row** is one timestamp and any of these fields (absent or empty: not measured)::

    timestamp            ISO 8601 with an explicit UTC offset: +08:00 (Changzhou) or Z/+00:00
    grid_import_kw       average import over [timestamp, timestamp + interval) [kW], >= 0
    grid_export_kw       average export over the same interval [kW], >= 0
    import_counter_kwh   import energy register read at the instant ``timestamp`` [kWh]
    export_counter_kwh   export energy register read at ``timestamp`` [kWh]
    pv_kw                average PV AC output over the interval [kW], >= 0
    load_kw              average site consumption over the interval [kW], >= 0
    battery_kw           average battery AC power over the interval [kW], discharge positive
    soc_kwh              battery state of charge at the instant ``timestamp`` [kWh]

``interval`` is the batch's ``interval_minutes`` (1, 3, 5 or 15: it divides the 15-minute
billing interval); every timestamp lies on it (``10:05`` at 5 minutes, not ``10:07``).

Checks, each reported per row: the timestamp (explicit offset, +08:00 or UTC, on the
interval grid, not in the future: an instant at most :data:`CLOCK_SKEW_S` ahead of ``now``,
an averaging interval over by then); at least one field; each value a finite number in its
range from :func:`field_limits` (import or export above the transformer's rating, PV above
its inverters, SOC above the battery's capacity, ...); no timestamp twice in a batch;
counters never running backwards nor jumping faster than the transformer can carry, within
the batch and against the stored readings just before and after it. Gaps are reported, not
rejected. At most :data:`MAX_BATCH_ROWS` rows per API batch.

**15-minute intervals** (:func:`to_intervals`, the one place where readings become billing
intervals): a counter's energy over ``[t, t + 15 min)`` is its reading at ``t + 15 min``
minus its reading at ``t`` (both instants must have been read) and its average power that
energy over 0.25 h; where both exist, a counter wins over averaged power (the billing meter).
Averaged powers are the duration-weighted mean of the rows inside the interval. The SOC of an
interval is the last reading in ``(t, t + 15 min]`` (the SOC at its end, as plans give it).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models import InvalidInputError
from vpp.options import DATE_MAX, DATE_MIN
from vpp.sites import Site
from vpp.timebase import INTERVAL_MINUTES, TZ

if TYPE_CHECKING:
    import pandas as pd

#: Interval averages over [timestamp, timestamp + interval) [kW].
POWER_FIELDS = ("grid_import_kw", "grid_export_kw", "pv_kw", "load_kw", "battery_kw")
#: Energy registers read at the instant ``timestamp`` [kWh].
COUNTER_FIELDS = ("import_counter_kwh", "export_counter_kwh")
#: Readings at the instant ``timestamp``.
INSTANT_FIELDS = ("soc_kwh", *COUNTER_FIELDS)
FIELDS = (*POWER_FIELDS, "soc_kwh", *COUNTER_FIELDS)
#: Which averaged power a counter measures.
COUNTER_POWER = {"import_counter_kwh": "grid_import_kw", "export_counter_kwh": "grid_export_kw"}
#: Resolutions a batch may have [min]: divisors of the 15-minute billing interval.
INTERVALS_MINUTES = (1, 3, 5, 15)
#: Rows in one API batch (a month of 15-minute rows fits; so do two days of 1-minute rows).
MAX_BATCH_ROWS = 3000
#: Rows in one imported CSV file (a month of 1-minute rows fits).
MAX_FILE_ROWS = 100_000
#: How far ahead of the receiving clock a timestamp may be (clock skew) [s].
CLOCK_SKEW_S = 60.0
#: Metering tolerance on nameplate ratings (transformer, inverters, battery power) [-].
RATING_TOLERANCE = 0.02
#: Offsets a timestamp may carry: Changzhou's own (UTC+8, no daylight saving) or UTC.
OFFSETS = (dt.timedelta(hours=8), dt.timedelta(0))
#: Largest counter reading accepted [kWh].
COUNTER_MAX_KWH = 1e12
#: Gaps listed at most (the count of missing intervals is always complete).
MAX_GAPS = 50


class MeasurementError(InvalidInputError):
    """A rejected batch: ``errors`` has one entry per bad row and field (``row`` counted from
    1 in the batch, ``timestamp`` as sent, ``field``, ``value``, ``message``, ``allowed``)."""

    def __init__(self, errors: list[dict[str, Any]], context: str = "invalid measurements",
                 ) -> None:
        self.errors = list(errors)
        super().__init__([_problem_text(e) for e in self.errors], context)

    def __reduce__(self):
        return type(self), (self.errors, self.context)


def _problem_text(e: Mapping[str, Any]) -> str:
    where = f"row {e['row']}" if e.get("row") is not None else "batch"
    if e.get("timestamp"):
        where += f" ({e['timestamp']})"
    value = "" if e.get("value") is None else f"={e['value']}"
    allowed = f"; allowed {e['allowed']}" if e.get("allowed") else ""
    return f"{where}: {e['field']}{value}: {e['message']}{allowed}"


@dataclass(frozen=True)
class Limit:
    """An allowed range [lo, hi] in the field's unit and why it is so."""

    lo: float
    hi: float
    unit: str
    why: str

    def text(self) -> str:
        return f"[{self.lo:g}, {self.hi:g}] {self.unit} ({self.why})"


def field_limits(site: Site) -> dict[str, Limit]:
    """Each field's allowed range from the site's own ratings (transformer, PV inverters,
    battery), with :data:`RATING_TOLERANCE` on power ratings; the SOC within capacity."""
    tol = 1.0 + RATING_TOLERANCE
    kva = site.grid.transformer_kva
    pv_ac = sum(a.ac_kw for a in site.pv_arrays)
    st = site.storage
    p_bat = st.power_kw if st is not None else 0.0
    grid = Limit(0.0, kva * tol, "kW", f"the transformer's {kva:g} kVA +{RATING_TOLERANCE:.0%}")
    limits = {
        "grid_import_kw": grid,
        "grid_export_kw": grid,
        "pv_kw": Limit(0.0, pv_ac * tol, "kW", f"the inverters' {pv_ac:g} kW AC "
                       f"+{RATING_TOLERANCE:.0%}" if pv_ac else "the site has no PV"),
        "load_kw": Limit(0.0, (kva + pv_ac + p_bat) * tol, "kW",
                         "transformer + PV inverters + battery power"),
        "battery_kw": Limit(-p_bat * tol, p_bat * tol, "kW",
                            f"the battery's {p_bat:g} kW +{RATING_TOLERANCE:.0%}, discharge "
                            "positive" if st else "the site has no battery"),
        "soc_kwh": Limit(0.0, st.energy_kwh if st else 0.0, "kWh",
                         f"the battery's {st.energy_kwh:g} kWh capacity" if st
                         else "the site has no battery"),
    }
    for c in COUNTER_FIELDS:
        limits[c] = Limit(0.0, COUNTER_MAX_KWH, "kWh", "an energy register")
    return limits


@dataclass
class MeasurementBatch:
    """A validated batch: ``frame`` indexed by UTC timestamps (sorted, unique) with
    ``interval_minutes`` and every field of :data:`FIELDS` (NaN: not measured), the gaps
    found (reported, not rejected) and, per frame row, its row number in the batch as sent
    (from 1; for errors found after validation)."""

    frame: pd.DataFrame
    interval_minutes: int
    gaps: list[dict[str, Any]] = field(default_factory=list)
    row_numbers: tuple[int, ...] = ()

    def summary(self) -> dict[str, Any]:
        idx = self.frame.index
        return {
            "rows": len(self.frame),
            "interval_minutes": self.interval_minutes,
            "first": idx[0].tz_convert(TZ).isoformat() if len(idx) else None,
            "last": idx[-1].tz_convert(TZ).isoformat() if len(idx) else None,
            "fields": [f for f in FIELDS if self.frame[f].notna().any()],
            "gaps": self.gaps[:MAX_GAPS],
            "missing_intervals": int(sum(g["missing_intervals"] for g in self.gaps)),
        }


def _timestamp(raw: Any) -> tuple[dt.datetime | None, str | None]:
    """The timestamp (UTC) of a row, or why it is not one."""
    if not isinstance(raw, str) or not raw.strip():
        return None, "missing: an ISO 8601 timestamp with its UTC offset is required"
    try:
        t = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        return None, "not an ISO 8601 timestamp (e.g. 2026-07-15T10:15:00+08:00)"
    off = t.utcoffset()
    if off is None:
        return None, ("no UTC offset: a naive time is ambiguous; add +08:00 (Changzhou "
                      "local time) or Z (UTC)")
    if off not in OFFSETS:
        hours = off.total_seconds() / 3600
        return None, (f"UTC offset {hours:+g} h is not Changzhou's: send +08:00 (local, no "
                      "daylight saving) or Z (UTC)")
    if not DATE_MIN <= t.date() <= DATE_MAX:
        return None, f"outside the supported dates {DATE_MIN} to {DATE_MAX}"
    return t.astimezone(dt.UTC), None


def _number(raw: Any, text: bool) -> tuple[float | None, str | None]:
    """A finite number, None for absent (None, or empty text from a file), or why it is not
    one; ``text``: numbers may come as text (a CSV file), else only as JSON numbers."""
    if raw is None or (text and isinstance(raw, str) and not raw.strip()):
        return None, None
    if isinstance(raw, bool):
        return None, "must be a number"
    if not isinstance(raw, int | float | str) or (isinstance(raw, str) and not text):
        return None, "must be a number" + ("" if text else " (a JSON number, not text)")
    try:
        v = float(raw)
    except ValueError:
        return None, "must be a number"
    except OverflowError:  # an integer beyond any float
        return None, "must be a finite number"
    if not math.isfinite(v):
        return None, "must be a finite number"
    return v, None


def _fmt_time(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat()


def validate_batch(
    site: Site, rows: list[Mapping[str, Any]], *, interval_minutes: int, now: dt.datetime,
    max_rows: int = MAX_BATCH_ROWS,
    stored_counters: Mapping[str, tuple[tuple[dt.datetime, float] | None,
                                        tuple[dt.datetime, float] | None]] | None = None,
    stored_until: dt.datetime | None = None, text_numbers: bool = False,
) -> MeasurementBatch:
    """Validate ``rows`` (dicts of :data:`FIELDS` and ``timestamp``) for ``site``.

    Parameters
    ----------
    interval_minutes : int
        The batch's resolution [min], one of :data:`INTERVALS_MINUTES`.
    now : datetime
        The receiving clock (timezone-aware): nothing may lie in the future of it.
    max_rows : int
        Rows allowed in the batch.
    stored_counters : mapping, optional
        Per counter field, the stored reading ``(time, kWh)`` just before the batch's first
        timestamp and just after its last (None where there is none): a counter must not
        run backwards across them either.
    stored_until : datetime, optional
        The end of the last stored row before the batch (its time plus its own interval
        length), for the gap report.
    text_numbers : bool
        Values may be text (rows of a CSV file); a JSON batch must send numbers.

    Raises
    ------
    MeasurementError
        Every bad row and field at once; nothing of the batch is to be stored.
    """
    import pandas as pd

    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    errors: list[dict[str, Any]] = []

    def bad(row: int | None, stamp: str | None, name: str, message: str, value: Any = None,
            allowed: str | None = None) -> None:
        errors.append({"row": row, "timestamp": stamp, "field": name, "value": value,
                       "message": message, "allowed": allowed})

    if interval_minutes not in INTERVALS_MINUTES:
        bad(None, None, "interval_minutes", "not a resolution this service takes",
            interval_minutes, ", ".join(map(str, INTERVALS_MINUTES)) + " minutes")
        raise MeasurementError(errors)
    if not rows:
        bad(None, None, "rows", "the batch is empty", None, f"1 to {max_rows} rows")
        raise MeasurementError(errors)
    if len(rows) > max_rows:
        bad(None, None, "rows", f"{len(rows)} rows in one batch; split it", len(rows),
            f"at most {max_rows} rows per batch")
        raise MeasurementError(errors)
    limits = field_limits(site)
    step = dt.timedelta(minutes=interval_minutes)
    horizon = now.astimezone(dt.UTC) + dt.timedelta(seconds=CLOCK_SKEW_S)
    seen: dict[dt.datetime, int] = {}
    good: list[tuple[dt.datetime, int, dict[str, float]]] = []
    for i, row in enumerate(rows, start=1):
        raw_ts = row.get("timestamp")
        stamp = raw_ts if isinstance(raw_ts, str) else None
        unknown = sorted(set(row) - {"timestamp", *FIELDS})
        for name in unknown:
            bad(i, stamp, str(name)[:64], "unknown field", None,
                "timestamp, " + ", ".join(FIELDS))
        t, why = _timestamp(raw_ts)
        if t is None:
            bad(i, stamp, "timestamp", why, raw_ts if isinstance(raw_ts, str) else None)
            continue
        local = t.astimezone(dt.timezone(dt.timedelta(hours=8)))
        if local.second or local.microsecond or local.minute % interval_minutes:
            bad(i, stamp, "timestamp", f"not on the {interval_minutes}-minute grid", raw_ts,
                f"minutes divisible by {interval_minutes}, seconds 0")
            continue
        values: dict[str, float] = {}
        for name in FIELDS:
            raw = row.get(name)
            v, why = _number(raw, text_numbers)
            if why:
                bad(i, stamp, name, why, raw if isinstance(raw, str) else repr(raw)[:64])
                continue
            if v is None:
                continue
            lim = limits[name]
            if not lim.lo <= v <= lim.hi:
                bad(i, stamp, name, "out of range", v, lim.text())
                continue
            values[name] = v
        if not values and not any(row.get(n) not in (None, "") for n in FIELDS):
            bad(i, stamp, "row", "no measurement in this row", None, ", ".join(FIELDS))
        if any(n in values or row.get(n) not in (None, "") for n in INSTANT_FIELDS) \
                and t > horizon:
            bad(i, stamp, "timestamp", f"in the future (receiving clock {_fmt_time(now)})",
                raw_ts, f"at most {CLOCK_SKEW_S:g} s ahead of the clock")
        elif any(n in values for n in POWER_FIELDS) and t + step > horizon:
            bad(i, stamp, "timestamp", f"the {interval_minutes}-minute interval it averages "
                f"is not over yet (receiving clock {_fmt_time(now)})", raw_ts,
                "an interval that has ended")
        if t in seen:
            bad(i, stamp, "timestamp", f"duplicate: row {seen[t]} has the same time", raw_ts,
                "each timestamp once per batch")
            continue
        seen[t] = i
        good.append((t, i, values))
    good.sort(key=lambda g: g[0])
    for name in COUNTER_FIELDS:
        before, after = (stored_counters or {}).get(name, (None, None))
        readings = [(t, i, v[name]) for t, i, v in good if name in v]
        chain = ([(before[0], None, before[1])] if before else []) + readings + (
            [(after[0], None, after[1])] if after else [])
        for (t0, i0, v0), (t1, i1, v1) in itertools.pairwise(chain):
            row_no = i1 if i1 is not None else i0
            stamp = _fmt_time(t1 if i1 is not None else t0)
            where = "the stored reading" if i0 is None or i1 is None else f"row {i0}"
            if v1 < v0 - 1e-9:
                text = (f"counter runs backwards: {v1:.12g} kWh after {v0:.12g} kWh at "
                        f"{_fmt_time(t0)} ({where})" if i1 is not None else
                        f"counter runs backwards: {v0:.12g} kWh here, but the stored reading "
                        f"at the later {_fmt_time(t1)} is {v1:.12g} kWh")
                bad(row_no, stamp, name, text, v1 if i1 is not None else v0,
                    "readings that never decrease")
                continue
            hours = (t1 - t0).total_seconds() / 3600.0
            cap = limits[COUNTER_POWER[name]]
            if hours > 0 and (v1 - v0) / hours > cap.hi:
                bad(row_no, stamp, name, f"counter jumps {v1 - v0:.12g} kWh in {hours * 60:g} min "
                    f"({(v1 - v0) / hours:.6g} kW on average, {where})",
                    v1 if i1 is not None else v0, f"an average power in {cap.text()}")
    if errors:
        raise MeasurementError(errors)
    index = pd.DatetimeIndex([t for t, _, _ in good]).tz_convert("UTC")
    frame = pd.DataFrame({name: [v.get(name, np.nan) for _, _, v in good] for name in FIELDS},
                         index=index, dtype=float)
    frame.insert(0, "interval_minutes", interval_minutes)
    return MeasurementBatch(frame, interval_minutes,
                            _gaps(list(index), step, stored_until),
                            tuple(i for _, i, _ in good))


def _gaps(times: list[Any], step: dt.timedelta, stored_until: dt.datetime | None,
          ) -> list[dict[str, Any]]:
    """Missing steps between consecutive timestamps, and between the end of the last
    stored row (``stored_until``, whatever its length) and the first."""
    out = []
    chain = [t.to_pydatetime() for t in times]
    if stored_until is not None and chain:
        missing = round((chain[0] - stored_until) / step)
        if missing > 0:
            out.append({"start": _fmt_time(stored_until), "end": _fmt_time(chain[0]),
                        "missing_intervals": missing})
    for a, b in itertools.pairwise(chain):
        missing = round((b - a) / step) - 1
        if missing > 0:
            out.append({"start": _fmt_time(a + step), "end": _fmt_time(b),
                        "missing_intervals": missing})
    return out


def read_csv_rows(source: str | Path | io.TextIOBase) -> list[dict[str, str]]:
    """Rows of a measurement CSV (a header of ``timestamp`` and any of :data:`FIELDS`;
    empty cells: not measured) as text, for :func:`validate_batch`.

    Raises
    ------
    InvalidInputError
        No ``timestamp`` column, unknown columns, or more than :data:`MAX_FILE_ROWS` rows.
    """
    if isinstance(source, str | Path):
        try:
            text = Path(source).read_text("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInputError(f"{source}: not UTF-8 text", "invalid measurement CSV"
                                    ) from None
        handle: Iterable[str] = io.StringIO(text)
        name = str(source)
    else:
        handle, name = source, "CSV"
    reader = csv.DictReader(handle)
    header = [h.strip() for h in (reader.fieldnames or [])]
    problems = []
    if "timestamp" not in header:
        problems.append(f"{name}: no 'timestamp' column; found {header}")
    unknown = [h for h in header if h not in ("timestamp", *FIELDS)]
    if unknown:
        problems.append(f"{name}: unknown column(s) {unknown}; allowed timestamp, "
                        + ", ".join(FIELDS))
    if problems:
        raise InvalidInputError(problems, "invalid measurement CSV")
    reader.fieldnames = header
    rows = []
    for row in reader:
        if len(rows) >= MAX_FILE_ROWS:
            raise InvalidInputError(f"{name}: more than {MAX_FILE_ROWS} rows; split the file",
                                    "invalid measurement CSV")
        rows.append({k: (v.strip() if isinstance(v, str) else v) for k, v in row.items()
                     if k is not None})
    return rows


# --------------------------------------------------------------------------- intervals

#: Columns of :func:`to_intervals`.
INTERVAL_COLUMNS = ("grid_import_kw", "grid_export_kw", "pv_kw", "load_kw", "battery_kw",
                    "soc_kwh", "import_coverage", "load_derived")


_MINUTE_NS = 60_000_000_000


def _spans_ns(index: pd.DatetimeIndex, minutes: Any) -> tuple[np.ndarray, np.ndarray]:
    """Start and end [epoch ns] of rows stamped ``index`` lasting ``minutes`` each."""
    start = index.as_unit("ns").asi8
    return start, start + np.asarray(minutes, dtype=np.int64) * _MINUTE_NS


def replaced_rows(batch: MeasurementBatch, stored: pd.DataFrame) -> pd.Index:
    """The times of ``stored`` rows a validated ``batch`` replaces: those at a batch row's
    time, and those lying wholly inside a batch row's interval (a stretch re-sent at a
    coarser resolution: three stored 5-minute rows under one new 15-minute row)."""
    frame = batch.frame
    if frame.empty or stored.empty:
        return stored.index[:0]
    b0, b1 = _spans_ns(frame.index, batch.interval_minutes)
    s0, s1 = _spans_ns(stored.index, stored["interval_minutes"].to_numpy())
    k = np.searchsorted(b0, s0, side="right") - 1  # the batch row starting at or before
    inside = (k >= 0) & (s1 <= b1[np.maximum(k, 0)])
    return stored.index[inside | stored.index.isin(frame.index)]


def overlapping_rows(batch: MeasurementBatch, stored: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a validated ``batch`` that overlap a ``stored`` row (a measurement frame:
    UTC index, ``interval_minutes``) of another length, one error each as in
    :class:`MeasurementError`. A stored row the batch replaces (:func:`replaced_rows`)
    does not count: a stretch may be re-sent at another resolution, finer or coarser, but
    one time is measured at one resolution, not blended."""
    frame = batch.frame
    if frame.empty or stored.empty:
        return []
    kept = stored[~stored.index.isin(replaced_rows(batch, stored))]
    if kept.empty:
        return []
    b0, b1 = _spans_ns(frame.index, batch.interval_minutes)
    s0, s1 = _spans_ns(kept.index, kept["interval_minutes"].to_numpy())
    order = np.argsort(s0)
    s0, s1, minutes = s0[order], s1[order], kept["interval_minutes"].to_numpy()[order]
    # stored rows start no earlier than 15 min before a batch row that they overlap
    lo = np.searchsorted(s0, b0 - 15 * _MINUTE_NS, side="left")
    hi = np.searchsorted(s0, b1, side="left")
    errors = []
    for k in range(len(b0)):
        hit = [j for j in range(lo[k], hi[k]) if s1[j] > b0[k]]
        if not hit:
            continue
        j = hit[0]
        at = dt.datetime.fromtimestamp(int(s0[j]) // 1_000_000_000, dt.UTC)
        errors.append({
            "row": batch.row_numbers[k] if batch.row_numbers else None,
            "timestamp": _fmt_time(frame.index[k].to_pydatetime()),
            "field": "timestamp", "value": None,
            "message": f"overlaps the stored {minutes[j]:g}-minute row at {_fmt_time(at)}: "
                       "a time is measured at one resolution; re-send that stretch at one "
                       "interval length (a row replaces the stored ones at its time and "
                       "inside its interval)",
            "allowed": "intervals that do not overlap stored rows of another length"})
    return errors


def empty_frame() -> pd.DataFrame:
    """A measurement frame without rows (the shape :func:`to_intervals` reads)."""
    import pandas as pd

    cols = {"interval_minutes": pd.Series(dtype=float),
            **{f: pd.Series(dtype=float) for f in FIELDS}}
    return pd.DataFrame(cols, index=pd.DatetimeIndex([], tz="UTC"))


def to_intervals(frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp,
                 zero_fields: tuple[str, ...] = (), partial: bool = False) -> pd.DataFrame:
    """Stored measurement rows as 15-minute billing intervals from ``start`` to ``end``
    (interval starts, Asia/Shanghai, ``end`` excluded; see the module docstring).

    Parameters
    ----------
    frame : DataFrame
        Rows as stored: a tz-aware index of timestamps, ``interval_minutes`` and
        :data:`FIELDS` (NaN: not measured).
    start, end : Timestamp
        On the 15-minute grid, tz-aware.
    zero_fields : tuple of str
        Power fields known to be 0 when not measured (``pv_kw`` at a site without PV,
        ``battery_kw`` without a battery, ``grid_export_kw`` at an anti-backflow site): they
        let the load be derived from the balance.
    partial : bool
        Whether an interval that shorter rows cover only in part (one 5-minute row of
        three) gets the average of what they cover. By default it is not measured: its
        15-minute average, what billing reads, is unknown (``import_coverage`` still says
        how much of it the import rows cover). The running interval of a control step
        takes the partial average.

    Returns
    -------
    DataFrame on the interval starts with ``grid_import_kw``, ``grid_export_kw``, ``pv_kw``,
    ``load_kw``, ``battery_kw`` (interval averages [kW], NaN: not measured), ``soc_kwh`` (at
    the interval's end [kWh]), ``import_coverage`` (share of the interval whose import is
    measured [-]; 1 from a counter) and ``load_derived`` (the load is
    ``import - export + pv + battery``, not metered).
    """
    import pandas as pd

    step = pd.Timedelta(minutes=INTERVAL_MINUTES)
    grid = pd.date_range(start.tz_convert(TZ), end.tz_convert(TZ), freq=step,
                         inclusive="left").as_unit("ns")
    n = len(grid)
    out = pd.DataFrame(index=grid, data={c: np.full(n, np.nan) for c in INTERVAL_COLUMNS[:6]})
    out["import_coverage"] = 0.0
    out["load_derived"] = False
    if n == 0 or frame.empty:
        return out
    f = frame[(frame.index >= grid[0] - step) & (frame.index <= grid[-1] + step)]
    if f.empty:
        return out
    local = pd.DatetimeIndex(f.index).tz_convert(TZ).as_unit("ns")
    t0 = grid[0].value
    step_ns = step.value
    # interval of each averaging row (its start), and of each instant reading (its end)
    pos_avg = (np.asarray(local.asi8) - t0) // step_ns
    pos_end = -((t0 - np.asarray(local.asi8)) // step_ns) - 1
    minutes = f["interval_minutes"].to_numpy(dtype=float)
    for name in POWER_FIELDS:
        v = f[name].to_numpy(dtype=float)
        ok = np.isfinite(v) & (pos_avg >= 0) & (pos_avg < n)
        if not ok.any():
            continue
        w = np.bincount(pos_avg[ok], weights=minutes[ok], minlength=n)
        s = np.bincount(pos_avg[ok], weights=minutes[ok] * v[ok], minlength=n)
        whole = w > 0 if partial else w >= INTERVAL_MINUTES - 1e-9
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = np.where(whole, s / np.where(w > 0, w, 1.0), np.nan)
        if name == "grid_import_kw":
            out["import_coverage"] = np.minimum(w / INTERVAL_MINUTES, 1.0)
    edges = np.asarray(grid.asi8)
    edges = np.r_[edges, edges[-1] + step_ns]
    for name in COUNTER_FIELDS:
        v = f[name].to_numpy(dtype=float)
        ok = np.isfinite(v)
        if not ok.any():
            continue
        read = pd.Series(v[ok], index=np.asarray(local.asi8)[ok])
        at = read.reindex(edges).to_numpy(dtype=float)
        kw = (at[1:] - at[:-1]) / (INTERVAL_MINUTES / 60.0)
        have = np.isfinite(kw)
        power = COUNTER_POWER[name]
        out.loc[have, power] = kw[have]
        if power == "grid_import_kw":
            cov = out["import_coverage"].to_numpy(copy=True)
            cov[have] = 1.0
            out["import_coverage"] = cov
    soc = f["soc_kwh"].to_numpy(dtype=float)
    ok = np.isfinite(soc) & (pos_end >= 0) & (pos_end < n)
    if ok.any():
        last = pd.Series(soc[ok], index=pos_end[ok]).groupby(level=0).last()
        col = out["soc_kwh"].to_numpy(copy=True)
        col[last.index.to_numpy()] = last.to_numpy()
        out["soc_kwh"] = col
    for name in zero_fields:
        out[name] = out[name].fillna(0.0)
    derive = out["load_kw"].isna()
    parts = out[["grid_import_kw", "grid_export_kw", "pv_kw", "battery_kw"]]
    derive &= parts.notna().all(axis=1)
    if derive.any():
        out.loc[derive, "load_kw"] = (parts["grid_import_kw"] - parts["grid_export_kw"]
                                      + parts["pv_kw"] + parts["battery_kw"])[derive]
        out.loc[derive, "load_derived"] = True
    return out


def zero_fields_of(site: Site) -> tuple[str, ...]:
    """The power fields that are 0 at ``site`` when not measured (see :func:`to_intervals`)."""
    out = []
    if not site.pv_arrays:
        out.append("pv_kw")
    if site.storage is None:
        out.append("battery_kw")
    if site.grid.export_limit_kw == 0:
        out.append("grid_export_kw")
    return tuple(out)
