"""Rooftop PV AC power with pvlib.

Convention: a 15-minute value labelled ``t`` is the average over ``[t, t + 15 min)``; it is
computed from irradiance at the interval midpoint, which for smooth clear-sky irradiance is the
interval average to well under 1 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pvlib
from pvlib.location import Location
from pvlib.temperature import TEMPERATURE_MODEL_PARAMETERS

from forecasts.solar import clear_sky, sun

#: PVWatts temperature coefficient of DC power for crystalline silicon [1/°C].
GAMMA_PDC = -0.0037
#: PVWatts nominal inverter efficiency [-].
ETA_INV_NOM = 0.96
#: Ground reflectance [-] (pvlib's default).
ALBEDO = 0.25


@dataclass(frozen=True)
class ArraySpec:
    """One rooftop array.

    Parameters
    ----------
    dc_kwp : float  DC nameplate [kWp]
    ac_kw : float  inverter AC rating [kW] (output is clipped here)
    tilt_deg, azimuth_deg : float  [deg]; azimuth clockwise from north, 180 = south
    losses_percent : float  lumped DC losses (soiling, wiring, mismatch, ...) [%]
    gamma_pdc : float  temperature coefficient of DC power [1/°C]
    """

    name: str
    dc_kwp: float
    ac_kw: float
    tilt_deg: float
    azimuth_deg: float
    losses_percent: float = 14.0
    gamma_pdc: float = GAMMA_PDC


@dataclass(frozen=True)
class SystemSpec:
    """A site's PV: location and arrays. ``altitude_m`` in metres."""

    latitude: float
    longitude: float
    altitude_m: float
    arrays: tuple[ArraySpec, ...]
    tz: str = "Asia/Shanghai"

    def location(self) -> Location:
        return Location(self.latitude, self.longitude, self.tz, self.altitude_m)


def _midpoints(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    if index.tz is None:
        raise ValueError("PV index must be timezone-aware (e.g. Asia/Shanghai)")
    if len(index) < 2:
        return index + pd.Timedelta(minutes=7.5)
    return index + (index[1] - index[0]) / 2


def clearsky_weather(
    system: SystemSpec, index: pd.DatetimeIndex, temp_air: float = 25.0, wind_speed: float = 1.0
) -> pd.DataFrame:
    """Clear-sky irradiance (pvlib Ineichen, shipped Linke turbidity) at interval midpoints.

    Returns
    -------
    DataFrame indexed like ``index`` with ``ghi, dni, dhi`` [W/m²], ``temp_air`` [°C] and
    ``wind_speed`` [m/s].
    """
    mid = _midpoints(index)
    out = clear_sky(system.location(), mid)
    out["temp_air"] = temp_air
    out["wind_speed"] = wind_speed
    out.index = index
    return out


def _check_weather(weather: pd.DataFrame) -> None:
    missing = sorted({"ghi", "dni", "dhi", "temp_air", "wind_speed"} - set(weather.columns))
    if missing:
        raise ValueError(f"weather is missing columns {missing}; found {list(weather.columns)}")


def array_conditions(
    location: Location, arr: ArraySpec, weather: pd.DataFrame, transposition: str = "haydavies"
) -> pd.DataFrame:
    """What one array sees: ``poa_global`` and ``effective_irradiance`` [W/m²] and
    ``cell_temperature`` [°C], indexed like ``weather`` (interval starts; computed at
    midpoints).

    The steps of pvlib's ``ModelChain`` (PVWatts, ``aoi_model="physical"``, no spectral loss,
    SAPM close-mount glass/glass temperature, albedo 0.25), called as pvlib functions on
    arrays with the sun's position computed once per site (:mod:`forecasts.solar`);
    ``tests/test_pv.py`` checks the result against ``ModelChain`` itself.
    """
    _check_weather(weather)
    s = sun(location, _midpoints(weather.index))
    ghi, dni, dhi = (weather[c].to_numpy(dtype=float) for c in ("ghi", "dni", "dhi"))
    irr = pvlib.irradiance.get_total_irradiance(
        arr.tilt_deg, arr.azimuth_deg, s["apparent_zenith"], s["azimuth"], dni, ghi, dhi,
        dni_extra=s["dni_extra"], airmass=s["airmass_relative"], albedo=ALBEDO,
        model=transposition,
    )
    aoi = pvlib.irradiance.aoi(arr.tilt_deg, arr.azimuth_deg, s["apparent_zenith"],
                               s["azimuth"])
    iam = pvlib.iam.physical(aoi)
    poa_global = np.nan_to_num(np.asarray(irr["poa_global"], dtype=float))
    effective = np.nan_to_num(np.asarray(irr["poa_direct"], dtype=float) * iam
                              + np.asarray(irr["poa_diffuse"], dtype=float))
    tc = pvlib.temperature.sapm_cell(poa_global, weather["temp_air"].to_numpy(dtype=float),
                                     weather["wind_speed"].to_numpy(dtype=float),
                                     **TEMPERATURE_MODEL_PARAMETERS["sapm"][
                                         "close_mount_glass_glass"])
    return pd.DataFrame({"poa_global": poa_global, "effective_irradiance": effective,
                         "cell_temperature": np.nan_to_num(np.asarray(tc, dtype=float))},
                        index=weather.index)


def array_ac_kw(arr: ArraySpec, conditions: pd.DataFrame) -> np.ndarray:
    """AC power [kW] of one array from :func:`array_conditions`: PVWatts DC
    ``dc_kwp (1 - losses) E/1000 (1 + gamma (Tc - 25))``, PVWatts inverter of nominal
    efficiency 0.96 rated ``ac_kw`` (clipped there), never negative."""
    e = conditions["effective_irradiance"].to_numpy()
    tc = conditions["cell_temperature"].to_numpy()
    dc_w = pvlib.pvsystem.pvwatts_dc(e, tc, arr.dc_kwp * 1000.0, arr.gamma_pdc)
    dc_w = dc_w * (1.0 - arr.losses_percent / 100.0)
    ac_w = pvlib.inverter.pvwatts(dc_w, arr.ac_kw * 1000.0 / ETA_INV_NOM, ETA_INV_NOM)
    return np.clip(np.nan_to_num(np.asarray(ac_w, dtype=float)), 0.0, None) / 1000.0


def pv_ac_kw(
    system: SystemSpec, weather: pd.DataFrame, transposition: str = "haydavies"
) -> pd.Series:
    """Site AC power [kW] from weather sampled at interval midpoints, summed over arrays.

    ``weather`` must have ``ghi, dni, dhi`` [W/m²], ``temp_air`` [°C], ``wind_speed`` [m/s]
    and is indexed by interval start; ``transposition`` is a pvlib sky-diffuse model
    (``haydavies``, ``perez``, ``isotropic``, ...). See :func:`array_conditions` and
    :func:`array_ac_kw` for the chain.
    """
    _check_weather(weather)
    total = np.zeros(len(weather))
    loc = system.location()
    for arr in system.arrays:
        total += array_ac_kw(arr, array_conditions(loc, arr, weather, transposition))
    return pd.Series(total, index=weather.index, name="pv_kw")


def clearsky_pv_kw(system: SystemSpec, index: pd.DatetimeIndex) -> pd.Series:
    """AC power under clear sky [kW]: an upper envelope, used until weather forecasts are given."""
    return pv_ac_kw(system, clearsky_weather(system, index))


__all__ = ["ArraySpec", "SystemSpec", "clearsky_pv_kw", "clearsky_weather", "pv_ac_kw", "pvlib"]
