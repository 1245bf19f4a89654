"""Load profiles: archetype shapes on the Chinese work calendar, and meter-data import."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import numpy as np
import pandas as pd

from forecasts.calendar import day_kind
from forecasts.shapes import LoadShape
from forecasts.timestamps import parse_times, rows_text


def archetype_profile(shape: LoadShape, peak_kw: float, index: pd.DatetimeIndex) -> pd.Series:
    """Load [kW] for each interval of ``index`` (interval starts, tz-aware).

    The hour-beginning shape values sit at hour midpoints and are interpolated linearly (and
    cyclically over the day) to interval midpoints; the day's kind (working day or weekend /
    holiday, with make-up working days) picks the shape, the month its factor.
    """
    if index.tz is None:
        raise ValueError("load index must be timezone-aware (Asia/Shanghai)")
    local = index.tz_convert("Asia/Shanghai")
    step_h = (local[1] - local[0]).total_seconds() / 3600 if len(local) > 1 else 0.25
    hour_mid = local.hour + local.minute / 60 + step_h / 2
    x = np.arange(-0.5, 25.0, 1.0)  # hour midpoints, padded for the cyclic wrap
    work = np.array(shape.workday)
    off = np.array(shape.non_workday)
    curves = {
        True: np.concatenate([[work[-1]], work, [work[0]]]),
        False: np.concatenate([[off[-1]], off, [off[0]]]),
    }
    # the day's kind once per calendar day, then one interpolation per curve
    days, which = np.unique(local.normalize().tz_localize(None), return_inverse=True)
    is_work = np.array([day_kind(pd.Timestamp(d).date())[0] for d in days], dtype=bool)[which]
    hour_mid = np.asarray(hour_mid, dtype=float)
    values = np.where(is_work, np.interp(hour_mid, x, curves[True]),
                      np.interp(hour_mid, x, curves[False]))
    values = values * np.asarray(shape.monthly_factor)[np.asarray(local.month) - 1]
    return pd.Series(values * peak_kw, index=index, name="load_kw")


#: The largest power a meter or PV row may carry [kW] (a site's limits stop there too).
MAX_METER_KW = 1e7


def read_meter_csv(
    source: str | Path | io.IOBase, column: str = "load_kw", tz: str = "Asia/Shanghai",
    gaps: bool = False,
) -> pd.Series:
    """Read a 15-minute meter CSV with columns ``timestamp`` and ``column`` [kW].

    ``gaps``: rows may be a whole number of 15-minute steps apart (a history with missing
    readings: the missing intervals come back as NaN); otherwise every row follows the
    last by 15 minutes.

    Timestamps without an offset are taken as local time in ``tz``; each row is the average
    power over the 15 minutes starting at its timestamp.

    Raises
    ------
    ValueError
        Naming missing columns, unparsable timestamps, negative or missing values, or a step
        other than 15 minutes.
    """
    name = source if isinstance(source, (str, Path)) else "meter CSV"
    try:
        df = pd.read_csv(source)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{name}: the file is empty; expected columns timestamp,{column}"
                         ) from None
    missing = [c for c in ("timestamp", column) if c not in df.columns]
    if missing:
        raise ValueError(f"{name}: missing columns {missing}; found {list(df.columns)}")
    if df.empty:
        raise ValueError(f"{name}: no rows after the header")
    idx, _ = parse_times(df["timestamp"], tz, name)
    values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float)
    problems = []

    def lines(bad: np.ndarray) -> str:
        return rows_text(np.flatnonzero(bad))

    bad = np.isnan(values)
    if gaps:
        bad &= df[column].notna().to_numpy()
    if bad.any():  # with gaps, an empty cell is a gap; text never is
        problems.append(f"{int(bad.sum())} {'non-numeric' if gaps else 'missing or non-numeric'}"
                        f" {column} values ({lines(bad)})")
    if (values < 0).any():
        problems.append(f"{column} must be >= 0 kW, minimum is {float(np.nanmin(values)):g} "
                        f"({lines(values < 0)})")
    if (values > MAX_METER_KW).any():
        problems.append(f"{column} above {MAX_METER_KW:,.0f} kW, the largest a site may have "
                        f"({lines(values > MAX_METER_KW)}; a value in W?)")
    if len(idx) > 1:
        steps = np.asarray((idx[1:] - idx[:-1]).total_seconds())
        off = (steps <= 0) | (steps % 900 != 0) if gaps else steps != 900
        if np.any(off):
            bad = int(np.flatnonzero(off)[0])
            rule = ("in time order on 15-minute steps (gaps allowed)" if gaps
                    else "15 minutes apart")
            problems.append(f"rows must be {rule}; line {bad + 3} follows after "
                            f"{steps[bad] / 60:g} min")
    if problems:
        raise ValueError(f"{name}: " + "; ".join(problems))
    series = pd.Series(values, index=idx, name=column)
    if gaps and len(idx) > 1:
        series = series.reindex(pd.date_range(idx[0], idx[-1], freq="15min"))
    return series


def day_class(day: dt.date) -> str:
    """``workday`` (make-up working days on weekends included), ``holiday`` (a statutory
    holiday's days off) or ``rest`` (other weekends)."""
    workday, holiday = day_kind(day)
    if workday:
        return "workday"
    return "holiday" if holiday else "rest"


#: Where a day class with no recent example borrows its shape from, in order.
_FALLBACK = {"workday": ("workday", "rest", "holiday"),
             "rest": ("rest", "holiday", "workday"),
             "holiday": ("holiday", "rest", "workday")}


def forecast_load(history_kw: pd.Series, index: pd.DatetimeIndex, weeks: int = 4) -> pd.Series:
    """Similar-day forecast [kW] for the 15-minute intervals starting at ``index``.

    Each target day takes, slot by slot, the mean of the days of its class
    (:func:`day_class`) among the last ``weeks`` weeks of ``history_kw`` (kW on 15-minute
    interval starts, NaN for gaps); a class with no example there borrows from the next class
    in :data:`_FALLBACK`, and a class with none at all in the whole history too.

    Only the history before ``index[0]`` is used: a forecast learns from what was measured
    before it (later rows are ignored).

    Raises ``ValueError`` when the history before ``index[0]`` is empty or does not cover
    every quarter-hour of the day.
    """
    if history_kw.empty or history_kw.notna().sum() == 0:
        raise ValueError("load history is empty: give at least one day of 15-minute meter data")
    tz = index.tz
    hist = history_kw.tz_convert(tz)
    hist = hist[hist.index < index[0]]
    if hist.notna().sum() == 0:
        first, end = history_kw.index[0].tz_convert(tz), history_kw.index[-1].tz_convert(tz)
        raise ValueError(f"no load history before {index[0]:%Y-%m-%d %H:%M}: the history "
                         f"covers {first:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M}, and a "
                         "forecast learns only from what was measured before it")
    slot = (hist.index.hour * 60 + hist.index.minute) // 15
    dates = pd.Index(hist.index.date)
    classes = {d: day_class(d) for d in dict.fromkeys(dates)}
    frame = pd.DataFrame({"kw": hist.to_numpy(), "slot": slot, "date": dates,
                          "cls": [classes[d] for d in dates]})
    last = max(classes)
    out = np.full(len(index), np.nan)
    t_dates = index.date
    t_slots = (index.hour * 60 + index.minute) // 15
    for day in dict.fromkeys(t_dates):
        recent = frame[frame["date"] > last - dt.timedelta(weeks=weeks)]
        profile = None
        for pool in (recent, frame):
            for cls in _FALLBACK[day_class(day)]:
                sub = pool[pool["cls"] == cls]
                if sub["kw"].notna().any():
                    profile = sub.groupby("slot")["kw"].mean()
                    break
            if profile is not None:
                break
        sel = t_dates == day
        out[sel] = profile.reindex(t_slots[sel]).to_numpy()
    if np.isnan(out).any():
        overall = frame.groupby("slot")["kw"].mean()
        out = np.where(np.isnan(out), overall.reindex(t_slots).to_numpy(), out)
    if np.isnan(out).any():
        slots = sorted(set(t_slots[np.isnan(out)]))
        raise ValueError(f"load history before {index[0]:%Y-%m-%d} has no measurement at "
                         f"{len(slots)} of the 96 quarter-hours of a day (first "
                         f"{slots[0] // 4:02d}:{slots[0] % 4 * 15:02d}): give at least one "
                         "whole day")
    return pd.Series(out, index=index, name="load_kw")
