"""Calibrate a site's PV model on its measured history, and the error metrics used to judge it.

Fitted, in this order:

- the decomposition model (DIRINT or Erbs) when the weather has GHI but no DNI/DHI;
- optionally the orientation, on a 5° grid within ``tilt_range`` / ``azimuth_range`` of the
  nominal values (single-array systems only);
- for each candidate, the effective DC capacity (one factor on every array's ``dc_kwp``, or
  with ``fit_loss`` on its ``1 - losses``) and
  the temperature coefficient ``gamma_pdc`` in [-0.6, -0.2] %/°C, by least squares on the AC
  power of daylight intervals (linear start, then Nelder-Mead through the inverter curve).

The candidate with the lowest RMSE wins; the P10/P90 bands are then fitted on the residuals.
Metrics are normalised by the AC rating (``capacity_kw``) for 15-minute values and by the mean
measured daily energy for daily values.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from forecasts.bands import fit_bands
from forecasts.climate import Climatology, load_climatology
from forecasts.pv import ArraySpec, array_ac_kw, array_conditions
from forecasts.pv_forecast import PVModel, forecast_from_frame, weather_frame
from forecasts.weather import Weather

GAMMA_BOUNDS = (-0.006, -0.002)
STEP_DEG = 5.0
DT_H = 0.25


@dataclass(frozen=True)
class Metrics:
    """Forecast errors. ``nmae``/``nrmse``: 15-minute daylight errors over ``capacity_kw``
    [-]; ``daily_nmae``/``daily_nrmse``/``daily_bias``: daily energy errors over the mean
    measured daily energy [-]."""

    nmae: float
    nrmse: float
    daily_nmae: float
    daily_nrmse: float
    daily_bias: float
    intervals: int
    days: int

    def as_dict(self) -> dict[str, float | int]:
        return {k: (round(v, 5) if isinstance(v, float) else v)
                for k, v in self.__dict__.items()}


def daylight_mask(forecast_clear_kw: pd.Series) -> pd.Series:
    """Intervals whose clear-sky power exceeds 2 % of its maximum."""
    return forecast_clear_kw > 0.02 * forecast_clear_kw.max()


def pv_metrics(
    predicted_kw: pd.Series, measured_kw: pd.Series, daylight: pd.Series, capacity_kw: float
) -> Metrics:
    """:class:`Metrics` of ``predicted_kw`` against ``measured_kw`` (both kW, same index).

    Days count only when every interval of the day has a measurement.
    """
    ok = daylight & measured_kw.notna()
    e = (predicted_kw - measured_kw)[ok]
    if e.empty:
        raise ValueError("no daylight interval has a measurement to compare with")
    dates = pd.Series(measured_kw.index.date, index=measured_kw.index)
    complete = measured_kw.notna().groupby(dates).all()
    full = dates.map(complete).astype(bool)
    em = measured_kw[full].groupby(dates[full]).sum() * DT_H
    ep = predicted_kw[full].groupby(dates[full]).sum() * DT_H
    de = ep - em
    mean_day = float(em.mean()) if len(em) else float("nan")
    return Metrics(
        nmae=float(e.abs().mean() / capacity_kw),
        nrmse=float(np.sqrt((e**2).mean()) / capacity_kw),
        daily_nmae=float(de.abs().mean() / mean_day) if len(em) else float("nan"),
        daily_nrmse=float(np.sqrt((de**2).mean()) / mean_day) if len(em) else float("nan"),
        daily_bias=float(de.mean() / mean_day) if len(em) else float("nan"),
        intervals=int(ok.sum()),
        days=len(em),
    )


def read_power_csv(
    source: str | Path | io.IOBase, column: str = "ac_power_kw", unit: Literal["W", "kW"] = "kW",
    label: Literal["start", "end"] = "start", tz: str = "Asia/Shanghai",
) -> pd.Series:
    """Measured AC power [kW] on 15-minute interval starts from a CSV with ``timestamp`` and
    ``column``. ``label="end"`` for loggers that stamp the end of the averaging interval.
    Small negative night values (inverter standby) become 0; gaps stay NaN."""
    name = getattr(source, "name", str(source))
    df = pd.read_csv(source)
    missing = [c for c in ("timestamp", column) if c not in df.columns]
    if missing:
        raise ValueError(f"power CSV {name}: missing columns {missing}; found {list(df.columns)}")
    try:
        idx = pd.DatetimeIndex(pd.to_datetime(df["timestamp"], format="ISO8601"))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"power CSV {name}: timestamps not ISO 8601: {exc}") from None
    idx = idx.tz_localize(tz) if idx.tz is None else idx.tz_convert(tz)
    if label == "end":
        idx = idx - pd.Timedelta(minutes=15)
    values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float)
    values = values / 1000.0 if unit == "W" else values
    if np.nanmin(values) < -0.05 * np.nanmax(values):
        raise ValueError(f"power CSV {name}: '{column}' goes down to {np.nanmin(values):g} kW; "
                         "measured PV output cannot be that negative (wrong sign or column?)")
    s = pd.Series(np.clip(values, 0.0, None), index=idx, name="measured_kw")
    s = s[~s.index.duplicated()].sort_index()
    full = pd.date_range(s.index[0], s.index[-1], freq="15min")
    return s.reindex(full)


@dataclass(frozen=True)
class Calibration:
    """The fitted model, what changed, and the error before/after on the calibration data."""

    model: PVModel
    fitted: dict
    before: Metrics
    after: Metrics


def _scale_system(model: PVModel, scale: float, gamma: float, tilt: float | None,
                  azimuth: float | None) -> PVModel:
    arrays = tuple(
        replace(a, dc_kwp=a.dc_kwp * scale, gamma_pdc=gamma,
                tilt_deg=a.tilt_deg if tilt is None else tilt,
                azimuth_deg=a.azimuth_deg if azimuth is None else azimuth)
        for a in model.system.arrays
    )
    return replace(model, system=replace(model.system, arrays=arrays))


def _fit_scale_gamma(
    arrays: tuple[ArraySpec, ...], conds: list[pd.DataFrame], measured: np.ndarray,
    mask: np.ndarray, fit_gamma: bool,
) -> tuple[float, float, float]:
    """(scale, gamma, sse) minimising the squared AC error on ``mask``."""
    ac_total = sum(a.ac_kw for a in arrays)
    # linear start: AC ≈ 0.96 s Σ k_i E_i (1 + g (Tc_i - 25)), away from clipping
    x1 = sum(0.96 * a.dc_kwp * (1 - a.losses_percent / 100) * c["effective_irradiance"]
             .to_numpy() / 1000 for a, c in zip(arrays, conds, strict=True))
    x2 = sum(0.96 * a.dc_kwp * (1 - a.losses_percent / 100) * c["effective_irradiance"]
             .to_numpy() / 1000 * (c["cell_temperature"].to_numpy() - 25)
             for a, c in zip(arrays, conds, strict=True))
    lin = mask & (measured < 0.9 * ac_total)
    if fit_gamma:
        coef, *_ = np.linalg.lstsq(np.column_stack([x1[lin], x2[lin]]), measured[lin],
                                   rcond=None)
        s0 = max(float(coef[0]), 1e-3)
        g0 = float(np.clip(coef[1] / s0, *GAMMA_BOUNDS))
    else:
        g0 = arrays[0].gamma_pdc
        xx = x1 + g0 * x2
        s0 = max(float(xx[lin] @ measured[lin] / max(xx[lin] @ xx[lin], 1e-12)), 1e-3)

    def sse(params: np.ndarray) -> float:
        s = params[0]
        g = params[1] if fit_gamma else g0
        if s <= 0 or not GAMMA_BOUNDS[0] <= g <= GAMMA_BOUNDS[1]:
            return 1e30
        ac = sum(array_ac_kw(replace(a, dc_kwp=a.dc_kwp * s, gamma_pdc=g), c)
                 for a, c in zip(arrays, conds, strict=True))
        return float(((ac - measured)[mask] ** 2).sum())

    x0 = np.array([s0, g0]) if fit_gamma else np.array([s0])
    res = minimize(sse, x0, method="Nelder-Mead",
                   options={"xatol": 1e-5, "fatol": 1e-9, "maxiter": 400})
    s = float(res.x[0])
    g = float(res.x[1]) if fit_gamma else g0
    return s, g, float(res.fun)


def _grid(nominal: float, half_range: float, lo: float, hi: float) -> list[float]:
    n = int(half_range // STEP_DEG)
    return sorted({min(hi, max(lo, nominal + k * STEP_DEG)) for k in range(-n, n + 1)})


def calibrate(
    model: PVModel,
    weather: Weather,
    measured_kw: pd.Series,
    fit_orientation: bool = False,
    fit_gamma: bool = True,
    fit_loss: bool = False,
    tilt_range: float = 10.0,
    azimuth_range: float = 15.0,
    decompositions: tuple[str, ...] | None = None,
    climate: Climatology | None = None,
) -> Calibration:
    """Fit ``model`` to ``measured_kw`` (AC kW on 15-minute interval starts; NaN = no data).

    ``fit_loss`` keeps the nameplate ``dc_kwp`` and puts the fitted factor into each array's
    ``losses_percent`` instead (capacity and a flat loss are the same degree of freedom: the
    power is identical either way). ``weather`` must cover the measured period. Raises
    ``ValueError`` with the reason when the data cannot support a fit (too few daylight
    intervals, orientation fit on several arrays).
    """
    system = model.system
    if not system.arrays:
        raise ValueError("the system has no PV arrays to calibrate")
    if fit_orientation and len(system.arrays) > 1:
        raise ValueError("orientation can only be fitted for a single-array system; "
                         f"this one has {len(system.arrays)} arrays")
    index = measured_kw.index
    climate = climate or load_climatology()
    if decompositions is None:
        decompositions = ("dirint", "erbs") if weather.kind == "ghi" else (model.decomposition,)
    measured = measured_kw.to_numpy(dtype=float)
    capacity = model.ac_kw

    frames = {}
    for dec in dict.fromkeys((model.decomposition, *decompositions)):
        frame, source, kind = weather_frame(replace(model, decomposition=dec), index, weather,
                                            climate)
        frames[dec] = frame
    before_fc = forecast_from_frame(model, frames[model.decomposition], source, kind,
                                    with_bands=False)
    daylight = daylight_mask(before_fc.frame["clear_kw"])
    mask = daylight.to_numpy() & np.isfinite(measured)
    if mask.sum() < 200:
        raise ValueError(f"calibration needs at least 200 daylight intervals with measured "
                         f"power, got {int(mask.sum())}")
    meas0 = np.nan_to_num(measured)
    a0 = system.arrays[0]
    tilts = _grid(a0.tilt_deg, tilt_range, 0.0, 90.0) if fit_orientation else [None]
    azis = _grid(a0.azimuth_deg, azimuth_range, 0.0, 359.0) if fit_orientation else [None]
    best = None
    loc = system.location()
    for dec in decompositions:
        for tilt in tilts:
            for az in azis:
                arrays = tuple(
                    replace(a, tilt_deg=a.tilt_deg if tilt is None else tilt,
                            azimuth_deg=a.azimuth_deg if az is None else az)
                    for a in system.arrays
                )
                conds = [array_conditions(loc, a, frames[dec], model.transposition)
                         for a in arrays]
                s, g, err = _fit_scale_gamma(arrays, conds, meas0, mask, fit_gamma)
                if best is None or err < best[0]:
                    best = (err, dec, tilt, az, s, g)
    _, dec, tilt, az, scale, gamma = best
    fitted_model = replace(_scale_system(model, scale, gamma, tilt, az), decomposition=dec)
    after_fc = forecast_from_frame(fitted_model, frames[dec], source, kind, with_bands=False)
    bands = fit_bands(measured, after_fc.frame["p50_kw"].to_numpy(),
                      after_fc.frame["clear_kw"].to_numpy(), after_fc.frame["kc"].to_numpy(),
                      source=f"fitted on {int(mask.sum())} daylight intervals "
                             f"{index[0]:%Y-%m-%d}..{index[-1]:%Y-%m-%d}")
    keep = 1.0 - system.arrays[0].losses_percent / 100.0
    if fit_loss:  # same power: nameplate kept, the factor goes into the lumped losses
        fitted_model = replace(fitted_model, system=replace(fitted_model.system, arrays=tuple(
            replace(a, dc_kwp=b.dc_kwp, losses_percent=100.0 * (1.0 - scale * (1.0 - b
                    .losses_percent / 100.0)))
            for a, b in zip(fitted_model.system.arrays, system.arrays, strict=True))))
    fitted = {
        "dc_kwp": round(sum(a.dc_kwp for a in fitted_model.system.arrays), 4),
        "dc_kwp_nominal": round(sum(a.dc_kwp for a in system.arrays), 4),
        "capacity_factor": round(scale, 5),
        # the same fit seen as a loss factor at nameplate capacity (negative: the nameplate
        # understates the array)
        "losses_percent_at_nameplate": round(100.0 * (1.0 - scale * keep), 3),
        "gamma_pdc": round(gamma, 6),
        "decomposition": dec,
        "tilt_deg": fitted_model.system.arrays[0].tilt_deg,
        "azimuth_deg": fitted_model.system.arrays[0].azimuth_deg,
        "period": f"{index[0]:%Y-%m-%d %H:%M}..{index[-1]:%Y-%m-%d %H:%M}",
        "daylight_intervals": int(mask.sum()),
        "weather": source,
    }
    fitted_model = replace(fitted_model, bands=bands, calibrated=fitted)
    m = pd.Series(measured, index=index)
    return Calibration(
        model=fitted_model,
        fitted=fitted,
        before=pv_metrics(before_fc.p50, m, daylight, capacity),
        after=pv_metrics(after_fc.p50, m, daylight, capacity),
    )
