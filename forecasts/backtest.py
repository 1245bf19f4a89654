"""Backtests: calibrate on the first part of a measured history, forecast the rest, score.

PV: the calibrated chain against a plain baseline measured in the same run - PVWatts with the
Erbs decomposition, nominal orientation and temperature coefficient, only the capacity fitted
by least squares on the same calibration period as the data come (no screening). Both are
scored on the same test measurements: screened like the calibration data (clock shifts
corrected when asked, stuck values and outages left out, see :mod:`forecasts.quality`).

Two questions, kept apart:

- **the model chain** (:attr:`PVBacktest.chain`): driven by the *measured* weather of the
  test period (satellite or station data), as the shipped datasets do. This tests the PV
  model, not a forecast: the weather is known.
- **a forecast** (:attr:`PVBacktest.forecast_chain`): driven by weather known the day before,
  day-ahead persistence of the measured clear-sky index (:func:`persistence_weather`), the
  simplest real forecast these datasets allow; its P10/P90 bands are fitted on the
  calibration period's persistence forecasts. Cloud-cover and NWP forecasts need archived
  forecasts for the same site and period, which the shipped datasets do not have.

Load: rolling one-day-ahead similar-day forecasts (:func:`forecasts.load.forecast_load`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from pvlib.location import Location

from forecasts.bands import BandModel, coverage, fit_bands
from forecasts.calibration import Calibration, Metrics, calibrate, daylight_mask, pv_metrics
from forecasts.load import forecast_load
from forecasts.pv import pv_ac_kw
from forecasts.pv_forecast import (
    PVForecast,
    PVModel,
    forecast_from_frame,
    forecast_pv,
    weather_frame,
)
from forecasts.quality import QualityReport, screen_power
from forecasts.weather import Weather, interval_clearsky
from forecasts.weather import coverage as coverage_of

DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class PVBacktest:
    """Calibration on ``[start, split)``, evaluation on ``[split, end)``.

    ``chain`` / ``plain``: the calibrated chain and the baseline on the measured weather;
    ``plain_clean``: the baseline fitted on the screened calibration data instead (what the
    screening alone is worth); ``forecast_chain`` / ``forecast_plain``: both driven by the
    day-ahead persistence forecast. ``band_coverage`` and ``forecast_coverage``: share of
    daylight test intervals inside [P10, P90].
    """

    split: pd.Timestamp
    calibration: Calibration
    baseline: Calibration
    baseline_clean: Calibration
    chain: Metrics
    plain: Metrics
    plain_clean: Metrics
    band_coverage: float
    forecast_chain: Metrics
    forecast_plain: Metrics
    forecast_coverage: float
    forecast_bands: BandModel
    forecast: PVForecast
    baseline_forecast: PVForecast
    measured_kw: pd.Series
    test_quality: QualityReport
    climatology_bands: BandModel


def persistence_weather(weather: Weather, location: Location, lag: pd.Timedelta = DAY
                        ) -> Weather:
    """Day-ahead persistence: each row's GHI is the clear-sky index measured ``lag`` earlier
    times the clear-sky GHI of its own interval; temperature (and wind) are those of ``lag``
    earlier too. Rows without a value ``lag`` earlier are dropped. The result has GHI only
    (kind ``ghi``) whatever the input had."""
    f = weather.frame
    step = pd.Timedelta(int(np.median(np.diff(f.index.as_unit("ns").asi8))), unit="ns")
    clear = interval_clearsky(location, f.index, step, weather.label)["ghi"]
    kc = (f["ghi"] / clear.where(clear >= 20.0)).clip(0.0, 2.0)
    kc_then = kc.shift(freq=lag).reindex(f.index)
    out = pd.DataFrame({"ghi": (kc_then.fillna(0.0) * clear).where(kc_then.notna() |
                                                                    (clear < 20.0))},
                       index=f.index)
    for col in ("temp_air", "wind_speed"):
        if col in f:
            out[col] = f[col].shift(freq=lag).reindex(f.index)
    out = out[f.index >= f.index[0] + lag].dropna()
    return Weather(out, weather.label, f"day-ahead persistence of {weather.source}")


def plain_forecast(model: PVModel, index: pd.DatetimeIndex, weather: Weather) -> PVForecast:
    """The baseline's forecast: plain pvlib output (P50 not bounded by the clear sky, no
    bands)."""
    frame, source, kind = weather_frame(model, index, weather)
    fc = forecast_from_frame(model, frame, source, kind, with_bands=False)
    fc.frame["p50_kw"] = pv_ac_kw(model.system, frame, model.transposition).to_numpy()
    return fc


def pv_backtest(
    model: PVModel, weather: Weather, measured_kw: pd.Series,
    calibration_days: float | None = None, fit_orientation: bool = False,
    split: pd.Timestamp | None = None, end: pd.Timestamp | None = None,
    fix_shifts: bool = False,
) -> PVBacktest:
    """Calibrate ``model`` and the baseline on ``measured_kw`` (kW on 15-minute interval
    starts) before ``split`` (or the first ``calibration_days`` days) and score both on the
    rest (up to ``end``, exclusive)."""
    if split is None:
        if calibration_days is None:
            raise ValueError("give calibration_days or split")
        split = measured_kw.index[0].normalize() + pd.Timedelta(days=calibration_days)
    train = measured_kw[measured_kw.index < split]
    test = measured_kw[(measured_kw.index >= split)
                       & ((measured_kw.index < end) if end is not None else True)]
    if len(test) < 96 or len(train) < 96:
        raise ValueError(f"the split at {split:%Y-%m-%d} leaves {len(train)} intervals "
                         f"to calibrate on and {len(test)} to test on; need a day of each")
    cal = calibrate(model, weather, train, fit_orientation=fit_orientation,
                    fix_shifts=fix_shifts)
    plain_model = replace(model, decomposition="erbs")
    base_args = {"fit_gamma": False, "decompositions": ("erbs",), "match_energy": False,
                 "bounded": False}
    base = calibrate(plain_model, weather, train, screen=False, **base_args)
    base_clean = calibrate(plain_model, weather, train, fix_shifts=fix_shifts, **base_args)
    fc = forecast_pv(cal.model, test.index, weather)
    fb = plain_forecast(base.model, test.index, weather)
    fbc = plain_forecast(base_clean.model, test.index, weather)
    daylight = daylight_mask(fc.frame["clear_kw"])
    cap = model.ac_kw
    tq = screen_power(test, fc.p50, fc.frame["clear_kw"], cap, fix_shifts=fix_shifts)
    truth = tq.measured_kw.where(tq.clean | ~daylight)
    # the forecast: day-ahead persistence, bands fitted on the calibration period's
    loc = model.system.location()
    persist = persistence_weather(weather, loc)
    q = cal.quality
    cal_truth = q.measured_kw.where(q.clean | ~q.daylight) if q is not None else train
    first = coverage_of(persist)[0].ceil("D")
    p_train = forecast_pv(cal.model, train.index[train.index >= first], persist).frame
    f_bands = fit_bands(cal_truth.reindex(p_train.index).to_numpy(),
                        p_train["p50_kw"].to_numpy(),
                        p_train["clear_kw"].to_numpy(), p_train["kc"].to_numpy(),
                        source=f"day-ahead persistence forecasts of {train.index[0]:%Y-%m-%d}.."
                               f"{(split - DAY):%Y-%m-%d}")
    f_model = replace(cal.model, bands={**cal.model.bands, "ghi": f_bands})
    pf = forecast_pv(f_model, test.index, persist)
    pfb = plain_forecast(base.model, test.index, persist)
    # climatological bands: P50 = clear-sky power x the calibration period's mean ratio
    f_train = forecast_pv(cal.model, train.index, weather).frame
    ok = cal_truth.notna() & daylight_mask(f_train["clear_kw"])
    ratio = float(cal_truth[ok].sum() / f_train["clear_kw"][ok].sum())
    clim = fit_bands(cal_truth.to_numpy(), ratio * f_train["clear_kw"].to_numpy(),
                     f_train["clear_kw"].to_numpy(), np.zeros(len(train)),
                     source=f"climatological P50 ({ratio:.3f} x clear sky) on the calibration "
                            "period", edges=(0.0, 9.0))
    clim = replace(clim, reference_ratio=ratio)
    return PVBacktest(
        split=split,
        calibration=cal,
        baseline=base,
        baseline_clean=base_clean,
        chain=pv_metrics(fc.p50, truth, daylight, cap),
        plain=pv_metrics(fb.p50, truth, daylight, cap),
        plain_clean=pv_metrics(fbc.p50, truth, daylight, cap),
        band_coverage=coverage(truth, fc.frame["p10_kw"], fc.frame["p90_kw"], daylight),
        forecast_chain=pv_metrics(pf.p50, truth, daylight, cap),
        forecast_plain=pv_metrics(pfb.p50, truth, daylight, cap),
        forecast_coverage=coverage(truth, pf.frame["p10_kw"], pf.frame["p90_kw"], daylight),
        forecast_bands=f_bands,
        forecast=fc,
        baseline_forecast=fb,
        measured_kw=truth,
        test_quality=tq,
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
