"""Fit the simulation's PV forecast-error model to a site's own forecasts and measurements.

The simulation (:func:`forecasts.synthetic.forecast_clearsky_index`) draws a day-ahead
forecast of the clear-sky index as ``k_forecast = k_actual + e``, ``e = d + a``: ``d`` a daily
error (Gaussian AR(1) from day to day, standard deviation ``daily_sigma``, lag-1 correlation
``daily_persistence``) and ``a`` a 15-minute error (AR(1), ``intraday_sigma``,
``intraday_persistence``). :func:`fit_pv_errors` estimates those four numbers from a measured
history and the forecasts that were made for it, and :func:`write_error_model` writes them as
the ``[pv_forecast]`` section of an error-model file in the shipped format
(``forecasts/data/simulation-errors.toml``), the other sections copied from a base file.

Method (moments of the model): ``k`` is the power clear-sky index, power over the system's
clear-sky AC power, on daylight intervals (clear-sky power above 10 % of its maximum). Under
the model the covariance of errors ``k`` intervals apart on the same day is
``C(k) = daily_sigma² + intraday_sigma² intraday_persistence^k``; fitting that curve to the
empirical covariances at lags 0..16 by least squares gives three of the numbers, and the
covariance at the same time on consecutive days, ``daily_sigma² daily_persistence +
intraday_sigma² intraday_persistence^96``, the fourth. The mean error (a bias the simulation
does not draw) is reported, not modelled. ``tests/test_error_fit.py`` recovers known values
from series drawn by the simulation's own generator.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from forecasts.synthetic import DEFAULT_FILE

MAX_LAG = 16
DAY_STEPS = 96
MIN_DAYS = 20
DAYLIGHT_SHARE = 0.10


@dataclass(frozen=True)
class PVErrorFit:
    """The four ``[pv_forecast]`` numbers [-], the mean error [-], and what they came from."""

    daily_sigma: float
    daily_persistence: float
    intraday_sigma: float
    intraday_persistence: float
    bias: float
    days: int
    intervals: int

    def section(self) -> dict[str, float]:
        return {"daily_sigma": round(self.daily_sigma, 4),
                "daily_persistence": round(self.daily_persistence, 4),
                "intraday_sigma": round(self.intraday_sigma, 4),
                "intraday_persistence": round(self.intraday_persistence, 4)}


def _cov(e: np.ndarray, lag: int) -> tuple[float, int]:
    """Mean product of errors ``lag`` steps apart where both exist (NaN elsewhere)."""
    a, b = e[:-lag] if lag else e, e[lag:]
    ok = np.isfinite(a) & np.isfinite(b)
    return (float(np.mean(a[ok] * b[ok])), int(ok.sum())) if ok.any() else (np.nan, 0)


def fit_pv_errors(
    measured_kw: pd.Series, forecast_kw: pd.Series, clear_kw: pd.Series,
) -> PVErrorFit:
    """Fit the PV forecast-error model (see module notes).

    Parameters
    ----------
    measured_kw : measured AC power [kW] on regular 15-minute interval starts (NaN: no data)
    forecast_kw : the day-ahead P50 forecast for the same intervals [kW]
    clear_kw : the system's clear-sky AC power on the same intervals [kW]

    Raises
    ------
    ValueError
        When the three series do not share an index, the step is not 15 minutes, or fewer
        than :data:`MIN_DAYS` days have daylight intervals with both values.
    """
    if not (measured_kw.index.equals(forecast_kw.index)
            and measured_kw.index.equals(clear_kw.index)):
        raise ValueError("fit_pv_errors: measured, forecast and clear-sky power need the same "
                         "index")
    idx = measured_kw.index
    if len(idx) < 2 or (pd.Series(idx).diff().dropna() != pd.Timedelta(minutes=15)).any():
        raise ValueError("fit_pv_errors: the series must be on a regular 15-minute grid")
    c = clear_kw.to_numpy(dtype=float)
    day = c > DAYLIGHT_SHARE * np.nanmax(c)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.where(day, (forecast_kw.to_numpy(dtype=float) - measured_kw.to_numpy(dtype=float))
                     / c, np.nan)
    ok = np.isfinite(e)
    days = int(pd.Series(idx.date)[ok].nunique())
    if days < MIN_DAYS:
        raise ValueError(f"fit_pv_errors: {days} days have daylight intervals with a forecast "
                         f"and a measurement; need at least {MIN_DAYS}")
    bias = float(np.nanmean(e))
    e = e - bias
    lags = np.arange(MAX_LAG + 1)
    cov = np.array([_cov(e, int(k))[0] for k in lags])
    good = np.isfinite(cov)

    def resid(x: np.ndarray) -> np.ndarray:
        sd2, st2, rho = x
        return (sd2 + st2 * rho ** lags - cov)[good]

    c0 = float(cov[0])
    fit = least_squares(resid, x0=[0.5 * c0, 0.5 * c0, 0.9],
                        bounds=([0.0, 0.0, 0.0], [max(c0, 1e-12), max(c0, 1e-12), 0.999]))
    sd2, st2, rho_t = (float(v) for v in fit.x)
    c96, _ = _cov(e, DAY_STEPS)
    rho_d = (c96 - st2 * rho_t ** DAY_STEPS) / sd2 if sd2 > 1e-12 else 0.0
    return PVErrorFit(
        daily_sigma=float(np.sqrt(sd2)), daily_persistence=float(np.clip(rho_d, 0.0, 0.99)),
        intraday_sigma=float(np.sqrt(st2)), intraday_persistence=float(np.clip(rho_t, 0.0, 0.99)),
        bias=bias, days=days, intervals=int(ok.sum()))


def _value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, int | float):
        return repr(v)
    return '"' + str(v).replace('"', "'") + '"'


def write_error_model(
    path: str | Path, fit: PVErrorFit, source: str, base: str | Path = DEFAULT_FILE,
    effective_from: dt.date | None = None,
) -> Path:
    """Write an error-model file: ``[pv_forecast]`` from ``fit``, ``[weather]`` and
    ``[load_forecast]`` copied from ``base`` (the shipped file by default). The result reads
    with :func:`forecasts.synthetic.load_error_model`."""
    b = Path(base)
    try:
        data = tomllib.loads(b.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"base error model file {b} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"base error model file {b}: not valid TOML ({exc})") from None
    lines = [
        "# Day-ahead forecast error model for `vpp simulate --errors FILE`.",
        f"# [pv_forecast] fitted by `vpp pv fit-errors` on {fit.days} days "
        f"({fit.intervals} daylight intervals) of measured vs forecast PV power; mean error "
        f"{fit.bias:+.4f} (not modelled).",
        f"# [weather] and [load_forecast] copied from {b.name}.",
        f"version = {_value(dt.date.today().isoformat())}",
        f"effective_from = {_value(effective_from or dt.date.today())}",
        f"source = {_value(source)}",
        "illustrative = false", "",
    ]
    sections = {"weather": data.get("weather", {}), "pv_forecast": fit.section(),
                "load_forecast": data.get("load_forecast", {})}
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {_value(v)}" for k, v in values.items()]
        lines.append("")
    out = Path(path)
    out.write_text("\n".join(lines), encoding="utf-8")
    return out
