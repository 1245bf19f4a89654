"""PV forecast: weather (or climatology) in, P10 / P50 / P90 AC power out, 15-minute intervals.

:class:`PVModel` is everything a site's forecast needs - its arrays, the decomposition and
transposition models, and optionally band tables fitted on its own history - and is what
calibration (:mod:`forecasts.calibration`) returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasts.bands import BandModel, bound_p50, default_bands
from forecasts.climate import Climatology, climatology_weather, load_climatology
from forecasts.pv import SystemSpec, clearsky_weather, pv_ac_kw
from forecasts.weather import Decomposition, Weather, interval_clearsky, prepare

COLUMNS = ("p10_kw", "p50_kw", "p90_kw", "clear_kw", "kc", "ghi", "dni", "dhi", "temp_air",
           "wind_speed")


@dataclass(frozen=True)
class PVModel:
    """A site's PV forecast model.

    ``decomposition`` splits GHI-only or cloud-cover weather into DNI/DHI; ``transposition``
    is the pvlib sky-diffuse model; ``bands`` maps a weather kind (``irradiance``, ``ghi``,
    ``cloud_cover``, ``climatology``) to the P10/P90 table fitted for forecasts made from that
    kind of input; kinds without one use the shipped defaults (:func:`band_for`);
    ``calibrated`` describes a calibration, if any, for reports.
    """

    system: SystemSpec
    decomposition: Decomposition = "dirint"
    transposition: str = "haydavies"
    bands: Mapping[str, BandModel] = field(default_factory=dict)
    calibrated: dict = field(default_factory=dict)

    def band_for(self, kind: str) -> BandModel:
        """The band table for forecasts from ``kind`` of weather: the model's own, else the
        shipped default for that kind."""
        return self.bands.get(kind) or default_bands()[kind]

    @property
    def ac_kw(self) -> float:
        """Total inverter AC rating [kW]."""
        return float(sum(a.ac_kw for a in self.system.arrays))


@dataclass(frozen=True)
class PVForecast:
    """``frame`` has :data:`COLUMNS` (power in kW, irradiance in W/m², temperature in °C,
    wind in m/s, ``kc`` the clear-sky index) on interval starts; ``source`` says which
    weather produced it and ``kind`` its class (``irradiance``, ``ghi``, ``cloud_cover``,
    ``climatology``)."""

    frame: pd.DataFrame
    source: str
    kind: str

    @property
    def p50(self) -> pd.Series:
        return self.frame["p50_kw"]


def weather_frame(
    model: PVModel, index: pd.DatetimeIndex, weather: Weather | None = None,
    climate: Climatology | None = None,
) -> tuple[pd.DataFrame, str, str]:
    """15-minute weather for ``index``, its description and kind (see :class:`PVForecast`)."""
    loc = model.system.location()
    climate = climate or load_climatology()
    if weather is None:
        frame = climatology_weather(climate, loc, index)
        return frame, f"climatology {climate.name} ({climate.source})", "climatology"
    frame = prepare(weather, loc, index, model.decomposition, climate.temp_air(index))
    return frame, weather.source, weather.kind


def clear_weather(system: SystemSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """Clear-sky irradiance on ``frame``'s intervals with ``frame``'s air temperature and
    wind: what the system would give under a clear sky that day (its clear-sky AC power, the
    envelope of P50 and P90)."""
    cs = clearsky_weather(system, frame.index)
    for col in ("temp_air", "wind_speed"):
        cs[col] = frame[col].to_numpy(dtype=float)
    return cs


def forecast_from_frame(
    model: PVModel, frame: pd.DataFrame, source: str, kind: str, with_bands: bool = True
) -> PVForecast:
    """P10/P50/P90 from an already prepared 15-minute weather frame (P10 and P90 are NaN
    when not ``with_bands``)."""
    index = frame.index
    clear = pv_ac_kw(model.system, clear_weather(model.system, frame),
                     model.transposition).to_numpy()
    p50 = bound_p50(pv_ac_kw(model.system, frame, model.transposition).to_numpy(), clear)
    cs_ghi = interval_clearsky(model.system.location(), index, pd.Timedelta(minutes=15),
                               "start")["ghi"].to_numpy()
    kc = np.where(cs_ghi > 20.0, frame["ghi"].to_numpy() / np.maximum(cs_ghi, 1e-9), 0.0)
    if with_bands:
        p10, p90 = model.band_for(kind).apply(p50, clear, kc, model.ac_kw)
    else:
        p10 = p90 = np.full(len(index), np.nan)
    out = pd.DataFrame({"p10_kw": p10, "p50_kw": p50, "p90_kw": p90, "clear_kw": clear,
                        "kc": kc}, index=index)
    for col in ("ghi", "dni", "dhi", "temp_air", "wind_speed"):
        out[col] = frame[col].to_numpy()
    return PVForecast(out, source, kind)


def forecast_pv(
    model: PVModel, index: pd.DatetimeIndex, weather: Weather | None = None,
    climate: Climatology | None = None,
) -> PVForecast:
    """The site's P10/P50/P90 AC power [kW] on the 15-minute intervals starting at ``index``.

    Without ``weather`` the climatology (shipped Changzhou file unless ``climate``) is used.
    """
    if index.tz is None:
        raise ValueError("forecast index must be timezone-aware")
    if not model.system.arrays:
        zero = pd.DataFrame(0.0, index=index, columns=list(COLUMNS))
        return PVForecast(zero, "no PV arrays", "none")
    frame, source, kind = weather_frame(model, index, weather, climate)
    return forecast_from_frame(model, frame, source, kind)
