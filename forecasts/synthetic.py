"""Seeded synthetic weather and forecast errors for long simulations.

Everything here is driven by a :class:`ErrorModel` (shipped file
``forecasts/data/simulation-errors.toml``, illustrative, replaceable) and a numpy random
generator, so the same file and seed give the same series bit for bit.

* :func:`synthetic_clearsky_index` - a 15-minute clear-sky index series ``kc`` for a period:
  daily values from a Beta distribution whose mean is the climatology's month, with day-to-day
  persistence; within-day AR(1) variability; finally each month is rescaled so that its GHI
  equals the climatology's GHI for that month (so the irradiance matches the documented
  climate: :mod:`forecasts.climate`).
* :func:`forecast_clearsky_index` - the day-ahead forecast of that index: actual + a daily and
  a 15-minute AR(1) error.
* :func:`load_error_factors` - multiplicative actual/forecast factors for the load.
* :func:`weather_from_kc` - ``ghi, dni, dhi, temp_air, wind_speed`` from a ``kc`` series.

Every random number belongs to a calendar day (:class:`DayStreams`): day-to-day processes
run from a fixed epoch (:data:`EPOCH`), 15-minute processes restart each day from their
stationary distribution, and the climatology rescaling works on whole calendar months. A
calendar day therefore gets the same weather, forecast errors and load factors whatever day
a simulation starts on, so runs compare month by month.
"""

from __future__ import annotations

import datetime as dt
import tomllib
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pvlib.location import Location
from scipy import signal, stats

from forecasts.climate import Climatology
from forecasts.weather import DEFAULT_WIND_M_S, Decomposition, decompose, interval_clearsky

DEFAULT_FILE = Path(__file__).with_name("data") / "simulation-errors.toml"
_STEP = pd.Timedelta(minutes=15)
#: First day of every day-to-day random process (the supported dates start here).
EPOCH = dt.date(2000, 1, 1)
PER_DAY = 96


@dataclass(frozen=True)
class ErrorModel:
    """Statistics of synthetic weather and of day-ahead forecast errors (all [-]).

    Daily and intraday standard deviations are of the clear-sky index (PV) or of the
    relative load error; persistences are lag-1 correlations (per day or per 15 minutes).
    """

    daily_concentration: float = 4.0
    daily_persistence: float = 0.5
    intraday_sigma: float = 0.25
    intraday_persistence: float = 0.9
    max_clearsky_index: float = 1.1
    pv_daily_sigma: float = 0.10
    pv_daily_persistence: float = 0.3
    pv_intraday_sigma: float = 0.08
    pv_intraday_persistence: float = 0.95
    load_daily_sigma: float = 0.04
    load_intraday_sigma: float = 0.05
    load_intraday_persistence: float = 0.9
    source: str = "defaults"

    def __post_init__(self) -> None:
        problems = []
        for name in ("daily_persistence", "intraday_persistence", "pv_daily_persistence",
                     "pv_intraday_persistence", "load_intraday_persistence"):
            if not 0.0 <= getattr(self, name) < 1.0:
                problems.append(f"{name}={getattr(self, name)}: allowed range [0, 1)")
        for name in ("intraday_sigma", "pv_daily_sigma", "pv_intraday_sigma",
                     "load_daily_sigma", "load_intraday_sigma"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name}={getattr(self, name)}: allowed range [0, 1]")
        if not 0.1 <= self.daily_concentration <= 1000:
            problems.append(f"daily_concentration={self.daily_concentration}: allowed "
                            "range [0.1, 1000]")
        if not 1.0 <= self.max_clearsky_index <= 1.5:
            problems.append(f"max_clearsky_index={self.max_clearsky_index}: allowed [1, 1.5]")
        if problems:
            raise ValueError("error model: " + "; ".join(problems))


def load_error_model(path: str | Path = DEFAULT_FILE) -> ErrorModel:
    """Read an error-model TOML file (sections ``weather``, ``pv_forecast``,
    ``load_forecast``; see the shipped file)."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"error model file {p} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"error model file {p}: not valid TOML ({exc})") from None
    fields: dict[str, float] = {}
    prefixes = {"weather": "", "pv_forecast": "pv_", "load_forecast": "load_"}
    known = set(ErrorModel.__dataclass_fields__) - {"source"}
    for section, prefix in prefixes.items():
        for key, value in data.get(section, {}).items():
            name = prefix + key
            if name not in known:
                raise ValueError(f"error model file {p}: unknown key [{section}] {key}")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"error model file {p}: [{section}] {key} must be a number")
            fields[name] = float(value)
    return ErrorModel(**fields, source=f"{p.name} ({data.get('source', 'no source given')})")


def ar1(rng: np.random.Generator, n: int, rho: float, size: tuple[int, ...] = ()) -> np.ndarray:
    """Stationary Gaussian AR(1) series of unit variance along the last axis: ``x[t] = rho
    x[t-1] + sqrt(1 - rho^2) e[t]``, ``x[0] ~ N(0, 1)``."""
    e = rng.standard_normal((*size, n))
    if n == 0 or rho == 0.0:
        return e
    scale = np.sqrt(1.0 - rho * rho)
    e[..., 0] /= scale
    return signal.lfilter([scale], [1.0, -rho], e, axis=-1)


def _days(index: pd.DatetimeIndex) -> tuple[np.ndarray, int]:
    """Day number of each interval (0 = first local day) and the number of days."""
    day = np.asarray((index.normalize() - index[0].normalize()).days, dtype=int)
    return day, int(day[-1]) + 1 if len(day) else 0


class DayStreams:
    """Random numbers that belong to calendar days, for ``(seed, keys...)``.

    ``daily`` values come from one AR(1) process over every day since :data:`EPOCH`;
    ``intraday`` values from one AR(1) process per day (96 quarter-hours, stationary start).
    A day's numbers do not depend on which other days are drawn.
    """

    def __init__(self, seed: int, *keys: str | int) -> None:
        self.seed, self.keys = int(seed), keys

    @staticmethod
    def ordinals(index: pd.DatetimeIndex) -> np.ndarray:
        """Days since :data:`EPOCH` of each interval's local date."""
        day0 = (index[0].normalize().date() - EPOCH).days
        if day0 < 0:
            raise ValueError(f"synthetic series start on {EPOCH} or later, not {index[0]}")
        return day0 + _days(index)[0]

    def daily(self, index: pd.DatetimeIndex, rho: float, purpose: str) -> np.ndarray:
        """Unit-variance AR(1) value of each interval's day (lag-1 correlation ``rho``
        from day to day)."""
        days = self.ordinals(index)
        series = ar1(stream(self.seed, *self.keys, purpose), int(days.max()) + 1, rho)
        return series[days]

    def daily_independent(self, index: pd.DatetimeIndex, purpose: str) -> np.ndarray:
        """Independent standard-normal value of each interval's day."""
        return self.daily(index, 0.0, purpose)

    def intraday(self, index: pd.DatetimeIndex, rho: float, purpose: str) -> np.ndarray:
        """Unit-variance AR(1) value of each interval (lag-1 correlation ``rho`` per
        15 minutes), one process per calendar day."""
        days = self.ordinals(index)
        slot = np.asarray((index.hour * 60 + index.minute) // 15, dtype=int)
        out = np.empty(len(index))
        for d in np.unique(days):
            sel = days == d
            row = ar1(stream(self.seed, *self.keys, purpose, int(d)), PER_DAY, rho)
            out[sel] = row[slot[sel]]
        return out


def whole_months(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """15-minute interval starts of every calendar month ``index`` touches."""
    first = index[0].normalize().replace(day=1)
    last = (index[-1].normalize().replace(day=1) + pd.DateOffset(months=1))
    return pd.date_range(first, last, freq=_STEP, inclusive="left")


def synthetic_clearsky_index(
    climate: Climatology, location: Location, index: pd.DatetimeIndex, model: ErrorModel,
    draws: DayStreams,
) -> np.ndarray:
    """Clear-sky index [-] for each 15-minute interval of ``index`` (local, regular).

    Each calendar month's GHI (``kc`` times the interval-average clear-sky GHI at
    ``location``) equals the climatology's, to within the clipping at
    ``model.max_clearsky_index`` (the rescaling is repeated three times); months are
    rescaled whole, so a day's value does not depend on where ``index`` starts or ends.
    """
    full = whole_months(index)
    mean = np.asarray(climate.clearsky_index)[full.month - 1]
    nu = model.daily_concentration
    u = stats.norm.cdf(draws.daily(full, model.daily_persistence, "sky-daily"))
    k = stats.beta.ppf(u, mean * nu, (1.0 - mean) * nu)
    intraday = draws.intraday(full, model.intraday_persistence, "sky-intraday")
    kc = k * (1.0 + model.intraday_sigma * 4.0 * k * (1.0 - k) * intraday)
    kc = np.clip(kc, 0.0, model.max_clearsky_index)
    clear = interval_clearsky(location, full, _STEP, "start")["ghi"].to_numpy()
    target = mean * clear
    key = full.year * 12 + full.month
    for _ in range(3):
        for month in np.unique(key):
            sel = key == month
            got = float(np.sum(kc[sel] * clear[sel]))
            if got > 0:
                kc[sel] = np.clip(kc[sel] * float(np.sum(target[sel])) / got, 0.0,
                                  model.max_clearsky_index)
    return kc[full.get_indexer(index)]


def forecast_clearsky_index(
    kc: np.ndarray, index: pd.DatetimeIndex, model: ErrorModel, draws: DayStreams,
) -> np.ndarray:
    """Day-ahead forecast of ``kc`` [-]: ``kc + sigma_d e_d + sigma_t e_t`` clipped to
    ``[0, max_clearsky_index]``, with ``e_d`` a daily AR(1) and ``e_t`` a 15-minute AR(1)."""
    e_d = model.pv_daily_sigma * draws.daily(index, model.pv_daily_persistence, "pv-daily")
    e_t = model.pv_intraday_sigma * draws.intraday(index, model.pv_intraday_persistence,
                                                   "pv-intraday")
    return np.clip(np.asarray(kc) + e_d + e_t, 0.0, model.max_clearsky_index)


def load_error_factors(
    index: pd.DatetimeIndex, model: ErrorModel, draws: DayStreams,
) -> np.ndarray:
    """Actual / forecast load ratio [-] per interval: ``max(0, 1 + sigma_d e_d + sigma_t e_t)``
    (daily errors independent, 15-minute errors AR(1))."""
    e_d = model.load_daily_sigma * draws.daily_independent(index, "load-daily")
    e_t = model.load_intraday_sigma * draws.intraday(index, model.load_intraday_persistence,
                                                     "load-intraday")
    return np.clip(1.0 + e_d + e_t, 0.0, None)


def weather_from_kc(
    kc: np.ndarray, location: Location, index: pd.DatetimeIndex, climate: Climatology,
    decomposition: Decomposition = "erbs",
) -> pd.DataFrame:
    """15-minute interval-start weather from a clear-sky index series: ``ghi`` = ``kc`` x
    clear-sky GHI, ``dni``/``dhi`` by ``decomposition``, ``temp_air`` from the climatology,
    wind 1 m/s [W/m², °C, m/s]."""
    clear = interval_clearsky(location, index, _STEP, "start")["ghi"].to_numpy()
    ghi = pd.Series(np.asarray(kc) * clear, index=index)
    parts = decompose(ghi, location, decomposition, times=index + _STEP / 2)
    parts["temp_air"] = climate.temp_air(index).to_numpy()
    parts["wind_speed"] = DEFAULT_WIND_M_S
    return parts


def stream(seed: int, *keys: str | int) -> np.random.Generator:
    """An independent generator for ``(seed, keys...)``: the same keys give the same
    numbers whatever the order or process in which streams are drawn."""
    words = [int(seed) & 0xFFFFFFFF]
    for k in keys:
        words.append(zlib.crc32(str(k).encode()) if isinstance(k, str) else int(k))
    return np.random.default_rng(np.random.SeedSequence(words))


def period_index(start: dt.date, months: int, tz: str = "Asia/Shanghai",
                 days: int | None = None) -> pd.DatetimeIndex:
    """15-minute interval starts from 00:00 of ``start`` for ``months`` calendar months (or
    ``days`` days when given)."""
    first = pd.Timestamp(start).tz_localize(tz)
    end = first + (pd.Timedelta(days=days) if days else pd.DateOffset(months=months))
    return pd.date_range(first, end, freq=_STEP, inclusive="left")
