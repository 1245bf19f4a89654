"""The time base of every plan and simulation: Asia/Shanghai, 15-minute intervals.

Interval labels are interval *starts* (an interval ``[t, t + 15 min)``), timezone-aware.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from models import InvalidInputError

TZ = "Asia/Shanghai"
INTERVAL_MINUTES = 15
DT_H = INTERVAL_MINUTES / 60.0
#: Intervals in one calendar day.
PER_DAY = 24 * 60 // INTERVAL_MINUTES


def horizon(start: dt.date, days: int = 1) -> pd.DatetimeIndex:
    """15-minute interval starts from 00:00 of ``start`` (Asia/Shanghai) for ``days`` days."""
    first = pd.Timestamp(start).tz_localize(TZ)
    return pd.date_range(first, periods=days * PER_DAY, freq=f"{INTERVAL_MINUTES}min")


def day_numbers(index: pd.DatetimeIndex) -> np.ndarray:
    """Calendar-day number of each interval counted from the first interval's day (local)."""
    local = index.tz_convert(TZ)
    return np.asarray((local.normalize() - local[0].normalize()).days, dtype=int)


def align_series(series: pd.Series, index: pd.DatetimeIndex, name: str) -> np.ndarray:
    """Values of a user series on the plan's intervals; an error names missing intervals."""
    s = series.copy()
    if s.index.tz is None:
        s.index = s.index.tz_localize(TZ)
    s = s.reindex(index)
    if s.isna().any():
        first = s.index[s.isna()][0]
        raise InvalidInputError(
            f"{name}: no value for {int(s.isna().sum())} of {len(index)} plan intervals "
            f"(first {first.isoformat()}); give 15-minute values covering the whole horizon")
    values = s.to_numpy(dtype=float)
    if (values < 0).any():
        raise InvalidInputError(f"{name}: values must be >= 0 kW, minimum {values.min():g}")
    return values
