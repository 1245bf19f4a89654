"""Measured PV history before a fit: clock shifts, stuck values, clipping, outages.

:func:`screen_power` looks at measured AC power next to what the model expects from the
matching weather and returns a :class:`QualityReport`: what was found, and the intervals fit
to calibrate on. The detectors are pvanalytics' where it has one:

- **clock shifts** (a logger that follows daylight saving time, or is an hour off): the
  day's midpoint between first and last light in the measured power against the same in the
  clear-sky power of the system; :func:`pvanalytics.quality.time.shifts_ruptures` finds the
  dates where the difference changes (change-point detection with ``ruptures``). The shift of
  each period is then measured against the weather: the 15-minute lag (within ±2 h) at which
  the period's measured power correlates best with the expected power. A period whose lag is
  not zero is reported, and moved back onto the weather's clock when ``fix_shifts``;
- **stuck values**: :func:`pvanalytics.quality.gaps.stale_values_round` (the same value, to
  the watt, three intervals running) in daylight with output;
- **clipping**: :func:`pvanalytics.features.clipping.geometric`; counted as clipping when it
  marks at least 0.5 % of the daylight intervals (the PV Fleets rule), with the level it clips
  at;
- **outages** (or snow cover): no output (< 1 % of the AC rating) in an interval whose
  expected power is above 20 % of it, and every daylight interval of a day whose output is
  below 1 % of the expected (when that is more than half an hour at the rating).

Stuck, outage and missing intervals are left out of the fit; clipped ones stay in (the model
clips too) unless the clipping level disagrees with the inverter rating, which the report says.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

STEP = pd.Timedelta(minutes=15)
#: Lags tried when measuring a period's clock shift [15-minute steps].
MAX_LAG = 8
#: Shortest period whose shift is measured and corrected [days].
MIN_SHIFT_DAYS = 7
#: Penalty of the change-point search (pvanalytics default 13; lower finds shorter periods).
PENALTY = 5.0
CLIP_SHARE = 0.005
OUTAGE_EXPECTED = 0.20
OUTAGE_MEASURED = 0.01


@dataclass(frozen=True)
class ClockShift:
    """Measured power runs ``minutes`` late (negative: early) on ``first``..``last``."""

    first: pd.Timestamp
    last: pd.Timestamp
    minutes: int

    def __str__(self) -> str:
        late = "late" if self.minutes > 0 else "early"
        return (f"{self.first:%Y-%m-%d}..{self.last:%Y-%m-%d}: clock {abs(self.minutes)} min "
                f"{late}")


@dataclass(frozen=True)
class QualityReport:
    """What :func:`screen_power` found. Masks are boolean series on the measured index.

    ``measured_kw`` is the history after the shift correction (when ``corrected``), ``clean``
    the intervals to fit on; ``clip_level_kw`` the level the measured power clips at, if it
    does.
    """

    measured_kw: pd.Series
    clean: pd.Series
    missing: pd.Series
    stuck: pd.Series
    clipped: pd.Series
    outage: pd.Series
    clip_level_kw: float | None
    shifts: tuple[ClockShift, ...] = ()
    corrected: bool = False
    daylight: pd.Series = field(default_factory=lambda: pd.Series(dtype=bool))

    def lines(self) -> list[str]:
        """One line per finding, for the calibration summary."""
        n = int(self.daylight.sum())

        def share(mask: pd.Series) -> str:
            k = int((mask & self.daylight).sum())
            return f"{k} daylight intervals ({k / max(n, 1):.1%})"

        out = [f"daylight intervals: {n}; used for the fit: {share(self.clean)}",
               f"missing: {share(self.missing)}",
               f"stuck values: {share(self.stuck)}",
               f"outage or snow (no output under light): {share(self.outage)} on "
               f"{self._days(self.outage)} days"]
        if self.clip_level_kw is not None:
            out.append(f"clipping at {self.clip_level_kw:.3f} kW: {share(self.clipped)}")
        else:
            out.append(f"clipping: none ({share(self.clipped)} flagged, below "
                       f"{CLIP_SHARE:.1%})")
        if self.shifts:
            verb = "corrected" if self.corrected else "not corrected (fix_shifts)"
            out += [f"clock shift {s} - {verb}" for s in self.shifts]
        else:
            out.append("clock shifts: none")
        return out

    @staticmethod
    def _days(mask: pd.Series) -> int:
        return int(pd.Series(mask.index.date)[mask.to_numpy()].nunique())

    def as_dict(self) -> dict:
        d = self.daylight
        return {
            "daylight_intervals": int(d.sum()),
            "clean_intervals": int((self.clean & d).sum()),
            "missing_intervals": int((self.missing & d).sum()),
            "stuck_intervals": int((self.stuck & d).sum()),
            "outage_intervals": int((self.outage & d).sum()),
            "clipped_intervals": int((self.clipped & d).sum()),
            "clip_level_kw": None if self.clip_level_kw is None else round(self.clip_level_kw,
                                                                           4),
            "clock_shifts": [str(s) for s in self.shifts],
            "shifts_corrected": self.corrected,
        }


def _midday_minutes(power: pd.Series, threshold: float) -> pd.Series:
    """Minutes after local midnight halfway between the day's first and last interval with
    ``power > threshold`` (NaN for days without one)."""
    on = power.fillna(0.0) > threshold
    t = pd.Series(power.index, index=power.index)
    days = power.index.normalize()
    first = t[on].groupby(days[on]).min()
    last = t[on].groupby(days[on]).max() + STEP
    mid = first + (last - first) / 2
    minutes = (mid - mid.index).dt.total_seconds() / 60.0
    return minutes.reindex(pd.DatetimeIndex(np.unique(days)))


def _best_lag(measured: np.ndarray, expected: np.ndarray, ok: np.ndarray) -> tuple[int, float]:
    """(lag, correlation): measured[t + lag] matches expected[t] best."""
    best = (0, -2.0)
    n = len(measured)
    for lag in range(-MAX_LAG, MAX_LAG + 1):
        lo, hi = max(0, -lag), min(n, n - lag)
        m = measured[lo + lag:hi + lag]
        e = expected[lo:hi]
        sel = ok[lo + lag:hi + lag] & ok[lo:hi] & np.isfinite(m)
        if sel.sum() < 20:
            continue
        c = np.corrcoef(m[sel], e[sel])[0, 1]
        if np.isfinite(c) and c > best[1]:
            best = (lag, float(c))
    return best


def detect_clock_shifts(
    measured_kw: pd.Series, expected_kw: pd.Series, clear_kw: pd.Series,
) -> tuple[ClockShift, ...]:
    """Periods whose measured power runs late or early against the weather (see module notes).

    Parameters
    ----------
    measured_kw : measured AC power [kW] on regular 15-minute interval starts
    expected_kw : the model's AC power from the matching weather [kW], same index
    clear_kw : the model's clear-sky AC power [kW], same index
    """
    from pvanalytics.quality.time import shifts_ruptures

    top = float(np.nanmax(clear_kw.to_numpy())) if len(clear_kw) else 0.0
    if top <= 0 or measured_kw.notna().sum() < 96 * MIN_SHIFT_DAYS:
        return ()
    thr = 0.01 * top
    mm = _midday_minutes(measured_kw, thr)
    mc = _midday_minutes(clear_kw, thr)
    ok = mm.notna() & mc.notna()
    if ok.sum() < 2 * MIN_SHIFT_DAYS:
        return ()
    _, shift = shifts_ruptures(mc[ok], mm[ok], period_min=MIN_SHIFT_DAYS, shift_min=15,
                               zscore_cutoff=1.5, prediction_penalty=PENALTY)
    shift = shift.fillna(0.0)
    seg = (shift != shift.shift()).cumsum()
    days_of = measured_kw.index.normalize()
    out = []
    m = measured_kw.to_numpy(dtype=float)
    e = expected_kw.to_numpy(dtype=float)
    light = (clear_kw > 0.05 * top).to_numpy()
    for _, dates in shift.groupby(seg):
        first, last = dates.index[0], dates.index[-1]
        if len(dates) < MIN_SHIFT_DAYS:
            continue
        sel = np.flatnonzero((days_of >= first) & (days_of <= last))
        lag, _corr = _best_lag(m[sel], e[sel], light[sel])
        if lag:
            out.append(ClockShift(first, last, 15 * lag))
    # neighbouring periods with the same lag are one period
    merged: list[ClockShift] = []
    for s in out:
        if merged and merged[-1].minutes == s.minutes and \
                (s.first - merged[-1].last) <= pd.Timedelta(days=1):
            merged[-1] = ClockShift(merged[-1].first, s.last, s.minutes)
        else:
            merged.append(s)
    return tuple(merged)


def correct_shifts(measured_kw: pd.Series, shifts: tuple[ClockShift, ...]) -> pd.Series:
    """``measured_kw`` with each shifted period moved back by its shift (same index; values
    pushed out of a period's edge are dropped, the gaps left are NaN)."""
    out = measured_kw.copy()
    days = measured_kw.index.normalize()
    for s in shifts:
        sel = (days >= s.first) & (days <= s.last)
        part = measured_kw[sel]
        moved = pd.Series(part.to_numpy(), index=part.index - pd.Timedelta(minutes=s.minutes))
        out[sel] = np.nan
        keep = moved.index.isin(out.index)
        out.loc[moved.index[keep]] = moved.to_numpy()[keep]
    return out


def screen_power(
    measured_kw: pd.Series, expected_kw: pd.Series, clear_kw: pd.Series, ac_kw: float,
    fix_shifts: bool = False, detect_shifts: bool = True,
) -> QualityReport:
    """Screen measured AC power [kW] (15-minute interval starts) against the model.

    Parameters
    ----------
    measured_kw : measured AC power [kW], NaN for gaps
    expected_kw : the nominal model's AC power from the matching weather [kW], same index
    clear_kw : the model's clear-sky AC power [kW], same index
    ac_kw : inverter AC rating [kW]
    fix_shifts : move shifted periods back onto the weather's clock before screening the rest
    detect_shifts : look for clock shifts at all
    """
    from pvanalytics.features.clipping import geometric
    from pvanalytics.quality.gaps import stale_values_round

    if not (measured_kw.index.equals(expected_kw.index)
            and measured_kw.index.equals(clear_kw.index)):
        raise ValueError("screen_power: measured, expected and clear-sky power need the same "
                         "index")
    shifts = detect_clock_shifts(measured_kw, expected_kw, clear_kw) if detect_shifts else ()
    meas = correct_shifts(measured_kw, shifts) if (fix_shifts and shifts) else measured_kw
    top = float(np.nanmax(clear_kw.to_numpy())) if len(clear_kw) else 0.0
    daylight = clear_kw > 0.02 * top
    missing = meas.isna()
    producing = meas > OUTAGE_MEASURED * ac_kw
    valid = meas.dropna()
    stuck = pd.Series(False, index=meas.index)
    if len(valid) > 3:
        stuck.loc[valid.index] = stale_values_round(valid, window=3, decimals=3).to_numpy()
    stuck &= producing & daylight
    outage = daylight & ~missing & ~producing & (expected_kw > OUTAGE_EXPECTED * ac_kw)
    # a day without output under light: all of its daylight intervals
    days = meas.index.normalize()
    got = meas.where(daylight).groupby(days).sum()
    want = expected_kw.where(daylight & ~missing).groupby(days).sum()
    dead = (got < OUTAGE_MEASURED * want) & (want * 0.25 > 0.5 * ac_kw)
    outage |= daylight & ~missing & pd.Series(dead.reindex(days).to_numpy(), index=meas.index)
    clipped = pd.Series(False, index=meas.index)
    on = valid[valid > OUTAGE_MEASURED * ac_kw]
    if len(on) > 96:
        try:
            flags = geometric(on, freq="15min")
            clipped.loc[flags.index[flags.to_numpy(dtype=bool)]] = True
        except (ValueError, IndexError) as exc:  # too little data for its daily statistics
            log.info("clipping detection skipped: %s", exc)
    n_day = max(int((daylight & ~missing).sum()), 1)
    level = None
    if (clipped & daylight).sum() >= CLIP_SHARE * n_day:
        level = float(meas[clipped].median())
    else:
        clipped[:] = False
    clean = daylight & ~missing & ~stuck & ~outage
    return QualityReport(meas, clean, missing, stuck, clipped, outage, level, shifts,
                         bool(fix_shifts and shifts), daylight)
