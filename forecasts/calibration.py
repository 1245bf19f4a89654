"""Calibrate a site's PV model on its measured history, and the error metrics used to judge it.

Steps (:func:`calibrate`):

- the history is screened (:mod:`forecasts.quality`: clock shifts, corrected on request;
  stuck values, outages and gaps left out; a clipping level unlike the inverter rating
  replaces it);
- the decomposition model (DIRINT or Erbs) when the weather has GHI but no DNI/DHI, optionally
  the orientation on a 5° grid within ``tilt_range`` / ``azimuth_range`` of the nominal
  values (single-array systems only), and for each candidate the temperature coefficient
  ``gamma_pdc`` in [-0.6, -0.2] %/°C with a first capacity factor, by least squares on the
  clean intervals with the sun at least 10° high (linear start, then Nelder-Mead through the
  inverter curve and the clear-sky bound); the candidate with the lowest RMSE wins;
- the effective DC capacity (one factor on every array's ``dc_kwp``, or with ``fit_loss`` on
  its ``1 - losses``) set so that the modelled energy of the clean daylight intervals equals
  the measured one (least squares alone under-fits it when the weather input is noisy);
- the P10/P90 bands on the residuals, for the kind of the calibration weather;
- warnings on what a person should check (:func:`plausibility_warnings`).

Metrics are normalised by the AC rating (``capacity_kw``) for 15-minute values and by the mean
measured daily energy for daily values.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from scipy.optimize import brentq, minimize

from forecasts.bands import bound_p50, fit_bands
from forecasts.climate import Climatology, load_climatology
from forecasts.load import MAX_METER_KW
from forecasts.pv import ArraySpec, array_ac_kw, array_conditions
from forecasts.pv_forecast import PVModel, clear_weather, forecast_from_frame, weather_frame
from forecasts.quality import QualityReport, screen_power
from forecasts.solar import sun
from forecasts.timestamps import (
    TIMESTAMP_NAMES,
    Ambiguous,
    Nonexistent,
    parse_times,
    rows_text,
    timestamp_column,
)
from forecasts.weather import Label, Weather

log = logging.getLogger(__name__)

GAMMA_BOUNDS = (-0.006, -0.002)
#: Intervals with the sun lower than this are left out of the least-squares shape fit [deg]
#: (horizon shading, reflection and the weather's timing dominate there).
MIN_ELEVATION_DEG = 10.0
#: Daily-energy bias on the calibration data above which the summary warns [-].
MAX_DAILY_BIAS = 0.02
#: Plausible lumped DC losses at nameplate capacity [%].
LOSS_PLAUSIBLE = (0.0, 40.0)
STEP_DEG = 5.0
DT_H = 0.25
STEP = pd.Timedelta(minutes=15)


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
    label: Label = "start", tz: str = "Asia/Shanghai", ambiguous: Ambiguous = "raise",
    nonexistent: Nonexistent = "raise", max_kw: float | None = None,
) -> pd.Series:
    """Measured AC power [kW] on 15-minute interval starts.

    The CSV has a time column (any of :data:`forecasts.timestamps.TIMESTAMP_NAMES`, the same
    as the weather reader's) and ``column`` (in ``unit``). ``label`` says what a row is, as for
    weather: ``"start"`` / ``"end"`` the average over the interval starting / ending at its
    timestamp (loggers often stamp the end), ``"instant"`` a sample at its timestamp. Rows
    finer than 15 minutes are averaged into the 15-minute intervals (an instant sample counts
    in the interval that contains it); 15-minute instant samples give each interval the mean
    of the samples at its two ends. Local times without an offset follow
    :func:`forecasts.timestamps.parse_times` (``ambiguous``, ``nonexistent``). Small negative
    night values (inverter standby) become 0; gaps stay NaN.

    ``max_kw``: the most a row may carry [kW] (1.5 x the system's AC rating where the caller
    knows it; default :data:`forecasts.load.MAX_METER_KW`).

    Raises
    ------
    ValueError
        Naming the file, the column and the lines: missing columns, bad timestamps, text or
        infinite values, values above ``max_kw``, one timestamp twice with different values,
        rows coarser than 15 minutes, strongly negative power.
    """
    name = getattr(source, "name", str(source))
    what = f"power CSV {name}"
    try:
        df = pd.read_csv(source)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{what}: the file is empty") from None
    if df.empty:
        raise ValueError(f"{what}: no rows after the header")
    try:
        time_col = timestamp_column(df.columns, what)
    except ValueError:
        time_col = None
    missing = [c for c, ok in (("timestamp", time_col), (column, column in df.columns)) if not ok]
    if missing:
        raise ValueError(f"{what}: missing columns {missing}; found {list(df.columns)} (time "
                         f"column: any of {list(TIMESTAMP_NAMES)})")
    idx, keep = parse_times(df[time_col], tz, what, time_col, ambiguous, nonexistent)
    raw = df[column]
    numbers = pd.to_numeric(raw, errors="coerce")
    kept = np.flatnonzero(keep)  # the file's data row of each kept value

    def lines(bad: np.ndarray) -> str:
        return rows_text(kept[np.asarray(bad, dtype=bool)])

    values = numbers.to_numpy(dtype=float)[keep]
    values = values / 1000.0 if unit == "W" else values
    text = (raw.notna() & numbers.isna()).to_numpy()[keep]
    problems = []
    if text.any():
        problems.append(f"'{column}' is not a number on {lines(text)} (an empty cell "
                        "is a gap; decimal point, no thousands separator)")
    if np.isinf(values).any():
        problems.append(f"'{column}' is infinite on {lines(np.isinf(values))}")
    limit = MAX_METER_KW if max_kw is None else max_kw
    high = np.isfinite(values) & (values > limit)
    if high.any():
        problems.append(f"'{column}' above {limit:,.0f} kW on {lines(high)}"
                        + (" (1.5 x the AC rating; a value in W? give --unit W)"
                           if max_kw is not None else ""))
    if problems:
        raise ValueError(f"{what}: " + "; ".join(problems))
    if np.nanmin(values) < -0.05 * np.nanmax(values):
        raise ValueError(f"{what}: '{column}' goes down to {np.nanmin(values):g} kW; "
                         "measured PV output cannot be that negative (wrong sign or column?)")
    s = pd.Series(np.clip(values, 0.0, None), index=idx, name="measured_kw")
    twice = s.index.duplicated(keep=False)
    if twice.any():
        spread = s[twice].groupby(level=0).agg(lambda v: np.nanmax(v) - np.nanmin(v))
        clash = spread[spread > 1e-6]
        if len(clash):
            raise ValueError(f"{what}: {len(clash)} timestamp(s) appear twice with different "
                             f"values, first {clash.index[0]:%Y-%m-%d %H:%M} "
                             f"({lines(s.index == clash.index[0])}); "
                             "keep one row per time")
    s = s.groupby(level=0).first().sort_index()  # a time twice: its (first) reading
    if len(s) < 2:
        raise ValueError(f"{what}: needs at least 2 rows, got {len(s)}")
    step = pd.Timedelta(int(np.median(np.diff(s.index.as_unit("ns").asi8))), unit="ns")
    if step > STEP:
        raise ValueError(f"{what}: rows are {step} apart; measured power must be at 15 minutes "
                         "or finer")
    if label == "end":
        s.index = s.index - step
    if step == STEP and label == "instant":  # samples at both ends of each interval
        s = (s + s.shift(-1, freq=STEP).reindex(s.index)) / 2
    elif step < STEP:  # a sub-interval (or a sample) counts in the interval it starts in
        s = s.resample(STEP).mean()
    full = pd.date_range(s.index[0].floor(STEP), s.index[-1], freq=STEP)
    return s.reindex(full).rename("measured_kw")


@dataclass(frozen=True)
class Calibration:
    """The fitted model, what changed, the error before/after on the calibration data (the
    intervals the screening kept), what the screening found, and warnings for the user."""

    model: PVModel
    fitted: dict
    before: Metrics
    after: Metrics
    quality: QualityReport | None = None
    warnings: tuple[str, ...] = ()


def _scale_system(model: PVModel, scale: float, gamma: float, tilt: float | None,
                  azimuth: float | None) -> PVModel:
    arrays = tuple(
        replace(a, dc_kwp=a.dc_kwp * scale, gamma_pdc=gamma,
                tilt_deg=a.tilt_deg if tilt is None else tilt,
                azimuth_deg=a.azimuth_deg if azimuth is None else azimuth)
        for a in model.system.arrays
    )
    return replace(model, system=replace(model.system, arrays=arrays))


def _ac(arrays: tuple[ArraySpec, ...], conds: list[pd.DataFrame],
        clear: list[pd.DataFrame] | None, scale: float, gamma: float) -> np.ndarray:
    """The chain's P50 [kW] at capacity factor ``scale`` and ``gamma``: the arrays' AC power,
    no higher than their clear-sky AC power (:func:`forecasts.bands.bound_p50`) unless
    ``clear`` is None."""
    sized = [replace(a, dc_kwp=a.dc_kwp * scale, gamma_pdc=gamma) for a in arrays]
    ac = sum(array_ac_kw(a, c) for a, c in zip(sized, conds, strict=True))
    if clear is None:
        return ac
    top = sum(array_ac_kw(a, c) for a, c in zip(sized, clear, strict=True))
    return bound_p50(ac, top)


def _fit_scale_gamma(
    arrays: tuple[ArraySpec, ...], conds: list[pd.DataFrame],
    clear: list[pd.DataFrame] | None, measured: np.ndarray, mask: np.ndarray, fit_gamma: bool,
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
    sub_conds = [c[mask] for c in conds]
    sub_clear = None if clear is None else [c[mask] for c in clear]
    target = measured[mask]

    def sse(params: np.ndarray) -> float:
        s = params[0]
        g = params[1] if fit_gamma else g0
        if s <= 0 or not GAMMA_BOUNDS[0] <= g <= GAMMA_BOUNDS[1]:
            return 1e30
        return float(((_ac(arrays, sub_conds, sub_clear, s, g) - target) ** 2).sum())

    x0 = np.array([s0, g0]) if fit_gamma else np.array([s0])
    res = minimize(sse, x0, method="Nelder-Mead",
                   options={"xatol": 1e-5, "fatol": 1e-9, "maxiter": 400})
    s = float(res.x[0])
    g = float(res.x[1]) if fit_gamma else g0
    return s, g, float(res.fun)


def _grid(nominal: float, half_range: float, lo: float, hi: float) -> list[float]:
    n = int(half_range // STEP_DEG)
    return sorted({min(hi, max(lo, nominal + k * STEP_DEG)) for k in range(-n, n + 1)})


def _energy_scale(
    arrays: tuple[ArraySpec, ...], conds: list[pd.DataFrame],
    clear: list[pd.DataFrame] | None, measured: np.ndarray, mask: np.ndarray, gamma: float,
    start: float,
) -> float:
    """The capacity factor at which the P50's energy over ``mask`` equals the measured
    (inverter clipping and the clear-sky bound included), bracketed around ``start``."""
    target = float(measured[mask].sum())
    sub_conds = [c[mask] for c in conds]
    sub_clear = None if clear is None else [c[mask] for c in clear]

    def energy(s: float) -> float:
        return float(_ac(arrays, sub_conds, sub_clear, s, gamma).sum()) - target

    lo, hi = 0.5 * start, 2.0 * start
    if energy(lo) > 0 or energy(hi) < 0:  # clipping caps the energy: keep the fit
        return start
    return float(brentq(energy, lo, hi, xtol=1e-6))


#: Share of the measured energy at night (clear-sky power 0) that means a wrong clock [-].
NIGHT_ENERGY_MAX = 0.05


def check_time_zone(measured_kw: pd.Series, expected_kw: pd.Series, clear_kw: pd.Series,
                    ) -> None:
    """Raise ``ValueError`` when much of the measured energy falls at night: the timestamps
    are on another clock (UTC, another zone) than the site's, by more than the shift
    screening looks for. Names the whole-hour shift that fits the expected power best."""
    m = measured_kw.reindex(clear_kw.index)
    total = float(np.nansum(m.to_numpy()))
    night = float(np.nansum(m.to_numpy()[clear_kw.to_numpy() <= 0]))
    if total <= 0 or night <= NIGHT_ENERGY_MAX * total:
        return
    e = np.nan_to_num(expected_kw.reindex(clear_kw.index).to_numpy())
    x = np.nan_to_num(m.to_numpy())
    fits = {h: float(np.dot(np.roll(x, -4 * h), e)) for h in range(-12, 13)}
    best = max(fits, key=fits.get)
    raise ValueError(f"{night / total:.0%} of the measured energy falls at night (when the "
                     f"clear-sky power is 0): the measured timestamps are on another clock; "
                     f"they fit best {abs(best)} h {'earlier' if best > 0 else 'later'} "
                     + ("(local times stamped as UTC? write the site's offset, e.g. +08:00, "
                        "into the timestamps)" if best > 0 else
                        "(UTC times without an offset read as local? add Z or +00:00 to the "
                        "timestamps)"))


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
    screen: bool = True,
    fix_shifts: bool = False,
    match_energy: bool = True,
    bounded: bool = True,
) -> Calibration:
    """Fit ``model`` to ``measured_kw`` (AC kW on 15-minute interval starts; NaN = no data).

    Steps: the history is screened (:func:`forecasts.quality.screen_power`: clock shifts,
    corrected when ``fix_shifts``; stuck values, outages and gaps left out); the shape
    parameters (decomposition, γ, orientation) and a first capacity are fitted by least
    squares on the clean intervals with the sun at least :data:`MIN_ELEVATION_DEG` high; then,
    with ``match_energy``, the capacity is set so that the modelled energy of all clean
    daylight intervals equals the measured one. Least squares alone under-fits the capacity
    when the weather is noisy (satellite irradiance: errors in the input attenuate the slope);
    matching the energy removes that bias. Clipping found in the history at a level other than
    the inverter rating replaces the rating (``ac_kw`` of each array scaled alike). The fit
    is of the chain's P50, no higher than the clear-sky AC power; ``bounded=False`` fits the
    plain pvlib output instead (the baseline of :mod:`forecasts.backtest`).

    ``fit_loss`` keeps the nameplate ``dc_kwp`` and puts the fitted factor into each array's
    ``losses_percent`` instead (capacity and a flat loss are the same degree of freedom: the
    power is identical either way; a factor that would make the losses negative stays on the
    capacity, with a warning). ``weather`` must cover the measured period. Raises
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
    capacity = model.ac_kw

    frames = {}
    for dec in dict.fromkeys((model.decomposition, *decompositions)):
        frame, source, kind = weather_frame(replace(model, decomposition=dec), index, weather,
                                            climate)
        frames[dec] = frame
    before_fc = forecast_from_frame(model, frames[model.decomposition], source, kind,
                                    with_bands=False)
    clear = before_fc.frame["clear_kw"]
    daylight = daylight_mask(clear)
    check_time_zone(measured_kw, before_fc.p50, clear)
    quality = None
    if screen:
        quality = screen_power(measured_kw, before_fc.p50, clear, capacity,
                               fix_shifts=fix_shifts)
        measured_kw = quality.measured_kw
        clean = quality.clean.to_numpy()
    else:
        clean = daylight.to_numpy() & measured_kw.notna().to_numpy()
    measured = measured_kw.to_numpy(dtype=float)
    elevation = 90.0 - sun(system.location(), index + STEP / 2)["apparent_zenith"]
    mask = clean & (elevation >= MIN_ELEVATION_DEG)
    if mask.sum() < 200:
        raise ValueError(f"calibration needs at least 200 daylight intervals with usable "
                         f"measured power (sun above {MIN_ELEVATION_DEG:g}°), got "
                         f"{int(mask.sum())}")
    meas0 = np.nan_to_num(measured)
    a0 = system.arrays[0]
    tilts = _grid(a0.tilt_deg, tilt_range, 0.0, 90.0) if fit_orientation else [None]
    azis = _grid(a0.azimuth_deg, azimuth_range, 0.0, 359.0) if fit_orientation else [None]
    warnings: list[str] = []
    arrays_in = system.arrays
    if quality is not None and quality.clip_level_kw is not None \
            and abs(quality.clip_level_kw / capacity - 1.0) > 0.03:
        k = quality.clip_level_kw / capacity
        arrays_in = tuple(replace(a, ac_kw=a.ac_kw * k) for a in arrays_in)
        warnings.append(f"the measured power clips at {quality.clip_level_kw:.3f} kW, not at "
                        f"the inverter rating {capacity:g} kW: the fit uses the measured level")
    best = None
    loc = system.location()
    for dec in decompositions:
        for tilt in tilts:
            for az in azis:
                arrays = tuple(
                    replace(a, tilt_deg=a.tilt_deg if tilt is None else tilt,
                            azimuth_deg=a.azimuth_deg if az is None else az)
                    for a in arrays_in
                )
                conds = [array_conditions(loc, a, frames[dec], model.transposition)
                         for a in arrays]
                cs = clear_weather(system, frames[dec])
                clear_conds = [array_conditions(loc, a, cs, model.transposition)
                               for a in arrays] if bounded else None
                s, g, err = _fit_scale_gamma(arrays, conds, clear_conds, meas0, mask,
                                             fit_gamma)
                if best is None or err < best[0]:
                    best = (err, dec, tilt, az, s, g, arrays, conds, clear_conds)
    _, dec, tilt, az, scale, gamma, arrays, conds, clear_conds = best
    scale_ls = scale
    if match_energy:
        scale = _energy_scale(arrays, conds, clear_conds, meas0, clean, gamma, scale)
    base = replace(model, system=replace(system, arrays=arrays_in))
    fitted_model = replace(_scale_system(base, scale, gamma, tilt, az), decomposition=dec)
    after_fc = forecast_from_frame(fitted_model, frames[dec], source, kind, with_bands=False)
    m_fit = np.where(clean | ~daylight.to_numpy(), measured, np.nan)
    bands = fit_bands(m_fit, after_fc.frame["p50_kw"].to_numpy(),
                      after_fc.frame["clear_kw"].to_numpy(), after_fc.frame["kc"].to_numpy(),
                      source=f"fitted on {int(clean.sum())} clean daylight intervals "
                             f"{index[0]:%Y-%m-%d}..{index[-1]:%Y-%m-%d} ({kind} weather)")
    keep = 1.0 - system.arrays[0].losses_percent / 100.0
    losses_at_nameplate = 100.0 * (1.0 - scale * keep)
    if fit_loss and losses_at_nameplate < 0:
        warnings.append(f"as a loss factor the fit reads {losses_at_nameplate:.2f} % (negative: "
                        "the array gives more than its nameplate); kept as a capacity factor")
    elif fit_loss:  # same power: nameplate kept, the factor goes into the lumped losses
        fitted_model = replace(fitted_model, system=replace(fitted_model.system, arrays=tuple(
            replace(a, dc_kwp=b.dc_kwp, losses_percent=100.0 * (1.0 - scale * (1.0 - b
                    .losses_percent / 100.0)))
            for a, b in zip(fitted_model.system.arrays, system.arrays, strict=True))))
    fitted = {
        "dc_kwp": round(sum(a.dc_kwp for a in fitted_model.system.arrays), 4),
        "dc_kwp_nominal": round(sum(a.dc_kwp for a in system.arrays), 4),
        "capacity_factor": round(scale, 5),
        "capacity_factor_least_squares": round(scale_ls, 5),
        # the same fit seen as a loss factor at nameplate capacity (negative: the nameplate
        # understates the array)
        "losses_percent_at_nameplate": round(losses_at_nameplate, 3),
        "gamma_pdc": round(gamma, 6),
        "ac_kw": round(sum(a.ac_kw for a in fitted_model.system.arrays), 4),
        "decomposition": dec,
        "tilt_deg": fitted_model.system.arrays[0].tilt_deg,
        "azimuth_deg": fitted_model.system.arrays[0].azimuth_deg,
        "period": f"{index[0]:%Y-%m-%d %H:%M}..{index[-1]:%Y-%m-%d %H:%M}",
        "daylight_intervals": int(mask.sum()),
        "weather": source,
    }
    fitted_model = replace(fitted_model, bands={kind: bands}, calibrated=fitted)
    m = pd.Series(m_fit, index=index)
    before = pv_metrics(before_fc.p50, m, daylight, capacity)
    after = pv_metrics(after_fc.p50, m, daylight, capacity)
    warnings += plausibility_warnings(fitted, after, quality, fit_gamma)
    for w in warnings:
        log.info("calibration: %s", w)
    return Calibration(model=fitted_model, fitted=fitted, before=before, after=after,
                       quality=quality, warnings=tuple(warnings))


def plausibility_warnings(
    fitted: dict, after: Metrics, quality: QualityReport | None, fit_gamma: bool = True,
) -> list[str]:
    """Warnings on a fit a person should look at: a daily-energy bias on the calibration data
    beyond ±:data:`MAX_DAILY_BIAS`, physically implausible parameters, uncorrected clock shifts,
    much of the history unusable."""
    out = []
    bias = after.daily_bias
    if np.isfinite(bias) and abs(bias) > MAX_DAILY_BIAS:
        out.append(f"daily-energy bias on the calibration data is {bias:+.1%} (beyond "
                   f"±{MAX_DAILY_BIAS:.0%}): the model does not reproduce the measured energy")
    loss = fitted["losses_percent_at_nameplate"]
    if not LOSS_PLAUSIBLE[0] <= loss <= LOSS_PLAUSIBLE[1]:
        out.append(f"losses_percent_at_nameplate {loss:.2f} % is outside the plausible "
                   f"{LOSS_PLAUSIBLE[0]:g}..{LOSS_PLAUSIBLE[1]:g} %: check the nameplate "
                   "dc_kwp, the power unit (W or kW), the time zone and the orientation")
    if fit_gamma and min(abs(fitted["gamma_pdc"] - b) for b in GAMMA_BOUNDS) < 1e-5:
        out.append(f"gamma_pdc {fitted['gamma_pdc']:g} 1/°C sits at the bound of "
                   f"{GAMMA_BOUNDS[0]:g}..{GAMMA_BOUNDS[1]:g}: the temperature coefficient "
                   "is not identified by this history")
    if quality is not None:
        if quality.shifts and not quality.corrected:
            out.append(f"{len(quality.shifts)} clock shift(s) found and not corrected: "
                       "fit with fix_shifts (CLI: --fix-shifts) or fix the logger's clock")
        day = quality.daylight
        used = float((quality.clean & day).sum()) / max(float(day.sum()), 1.0)
        if used < 0.7:
            out.append(f"only {used:.0%} of the daylight intervals are usable for the fit")
    return out
