"""Backtests: calibrate on the first part of a measured history, forecast the rest, score.

PV: the calibrated chain against a plain baseline measured in the same run - PVWatts with the
Erbs decomposition, nominal orientation and temperature coefficient, only the capacity fitted.
Load: rolling one-day-ahead similar-day forecasts (:func:`forecasts.load.forecast_load`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from forecasts.bands import BandModel, coverage, fit_bands
from forecasts.calibration import Calibration, Metrics, calibrate, daylight_mask, pv_metrics
from forecasts.load import forecast_load
from forecasts.pv_forecast import PVForecast, PVModel, forecast_pv
from forecasts.weather import Weather


@dataclass(frozen=True)
class PVBacktest:
    """Calibration on ``[start, split)``, evaluation on ``[split, end]``."""

    split: pd.Timestamp
    calibration: Calibration
    baseline: Calibration
    chain: Metrics
    plain: Metrics
    band_coverage: float
    forecast: PVForecast
    baseline_forecast: PVForecast
    measured_kw: pd.Series
    climatology_bands: BandModel


def pv_backtest(
    model: PVModel, weather: Weather, measured_kw: pd.Series, calibration_days: float,
    fit_orientation: bool = False,
) -> PVBacktest:
    """Calibrate ``model`` and the baseline on the first ``calibration_days`` days of
    ``measured_kw`` (kW on 15-minute interval starts) and score both on the rest."""
    split = measured_kw.index[0].normalize() + pd.Timedelta(days=calibration_days)
    train = measured_kw[measured_kw.index < split]
    test = measured_kw[measured_kw.index >= split]
    if len(test) < 96 or len(train) < 96:
        raise ValueError(f"calibration_days={calibration_days:g} leaves {len(train)} intervals "
                         f"to calibrate on and {len(test)} to test on; need a day of each")
    cal = calibrate(model, weather, train, fit_orientation=fit_orientation)
    base = calibrate(replace(model, decomposition="erbs"), weather, train, fit_gamma=False,
                     decompositions=("erbs",))
    fc = forecast_pv(cal.model, test.index, weather)
    fb = forecast_pv(base.model, test.index, weather)
    daylight = daylight_mask(fc.frame["clear_kw"])
    cap = model.ac_kw
    # climatological bands: P50 = clear-sky power x the calibration period's mean ratio
    f_train = forecast_pv(cal.model, train.index, weather).frame
    ok = train.notna() & daylight_mask(f_train["clear_kw"])
    ratio = float(train[ok].sum() / f_train["clear_kw"][ok].sum())
    clim = fit_bands(train.to_numpy(), ratio * f_train["clear_kw"].to_numpy(),
                     f_train["clear_kw"].to_numpy(), np.zeros(len(train)),
                     source=f"climatological P50 ({ratio:.3f} x clear sky) on the calibration "
                            "period", edges=(0.0, 9.0))
    return PVBacktest(
        split=split,
        calibration=cal,
        baseline=base,
        chain=pv_metrics(fc.p50, test, daylight, cap),
        plain=pv_metrics(fb.p50, test, daylight, cap),
        band_coverage=coverage(test, fc.frame["p10_kw"], fc.frame["p90_kw"], daylight),
        forecast=fc,
        baseline_forecast=fb,
        measured_kw=test,
        climatology_bands=clim,
    )


@dataclass(frozen=True)
class LoadBacktest:
    """Rolling one-day-ahead load forecast errors: ``mape`` over intervals with load > 0 [-],
    ``nmae`` = Σ|error| / Σ load [-], per-day values in ``daily``."""

    mape: float
    nmae: float
    days: int
    daily: pd.DataFrame


def load_backtest(history_kw: pd.Series, days: int = 28, weeks: int = 4) -> LoadBacktest:
    """Forecast each of the last ``days`` days of ``history_kw`` from the data before it."""
    local = history_kw.index
    dates = sorted(set(local.date))
    if len(dates) < days + 7:
        raise ValueError(f"load backtest needs at least {days + 7} days of history "
                         f"(7 to learn from plus {days} to test), got {len(dates)}")
    rows = []
    abs_err = total = 0.0
    ape = []
    for d in dates[-days:]:
        start = pd.Timestamp(d).tz_localize(local.tz)
        day_idx = pd.date_range(start, periods=96, freq="15min")
        past = history_kw[history_kw.index < start]
        fc = forecast_load(past, day_idx, weeks=weeks)
        actual = history_kw.reindex(day_idx)
        ok = actual.notna().to_numpy()
        e = (fc.to_numpy() - actual.to_numpy())[ok]
        a = actual.to_numpy()[ok]
        abs_err += float(np.abs(e).sum())
        total += float(a.sum())
        pos = a > 0
        ape.extend(np.abs(e[pos]) / a[pos])
        rows.append({"date": d, "mape": float(np.mean(np.abs(e[pos]) / a[pos])) if pos.any()
                     else float("nan"), "nmae": float(np.abs(e).sum() / max(a.sum(), 1e-9))})
    return LoadBacktest(mape=float(np.mean(ape)), nmae=abs_err / max(total, 1e-9), days=days,
                        daily=pd.DataFrame(rows))
