"""Rooftop PV AC power with pvlib.

Convention: a 15-minute value labelled ``t`` is the average over ``[t, t + 15 min)``; it is
computed from irradiance at the interval midpoint, which for smooth clear-sky irradiance is the
interval average to well under 1 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pvlib
from pvlib.location import Location
from pvlib.modelchain import ModelChain
from pvlib.pvsystem import PVSystem
from pvlib.temperature import TEMPERATURE_MODEL_PARAMETERS

#: PVWatts temperature coefficient of DC power for crystalline silicon [1/°C].
GAMMA_PDC = -0.0037
#: PVWatts nominal inverter efficiency [-].
ETA_INV_NOM = 0.96
_ZERO_LOSSES = dict.fromkeys(
    ("shading", "snow", "mismatch", "wiring", "connections", "lid", "nameplate_rating", "age",
     "availability"),
    0.0,
)


@dataclass(frozen=True)
class ArraySpec:
    """One rooftop array.

    Parameters
    ----------
    dc_kwp : float  DC nameplate [kWp]
    ac_kw : float  inverter AC rating [kW] (output is clipped here)
    tilt_deg, azimuth_deg : float  [deg]; azimuth clockwise from north, 180 = south
    losses_percent : float  lumped DC losses (soiling, wiring, mismatch, ...) [%]
    """

    name: str
    dc_kwp: float
    ac_kw: float
    tilt_deg: float
    azimuth_deg: float
    losses_percent: float = 14.0


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
    cs = system.location().get_clearsky(mid, model="ineichen")
    out = cs[["ghi", "dni", "dhi"]].copy()
    out["temp_air"] = temp_air
    out["wind_speed"] = wind_speed
    out.index = index
    return out


def pv_ac_kw(system: SystemSpec, weather: pd.DataFrame) -> pd.Series:
    """Site AC power [kW] from weather sampled at interval midpoints, summed over arrays.

    ``weather`` must have ``ghi, dni, dhi`` [W/m²], ``temp_air`` [°C], ``wind_speed`` [m/s]
    and is indexed by interval start; PVWatts DC model, physical IAM, SAPM close-mount cell
    temperature, lumped DC losses, PVWatts inverter clipped at ``ac_kw``.
    """
    missing = sorted({"ghi", "dni", "dhi", "temp_air", "wind_speed"} - set(weather.columns))
    if missing:
        raise ValueError(f"weather is missing columns {missing}; found {list(weather.columns)}")
    timed = weather.copy()
    timed.index = _midpoints(weather.index)
    total = pd.Series(0.0, index=weather.index, name="pv_kw")
    loc = system.location()
    for arr in system.arrays:
        pv = PVSystem(
            surface_tilt=arr.tilt_deg,
            surface_azimuth=arr.azimuth_deg,
            module_parameters={"pdc0": arr.dc_kwp * 1000.0, "gamma_pdc": GAMMA_PDC},
            inverter_parameters={"pdc0": arr.ac_kw * 1000.0 / ETA_INV_NOM,
                                 "eta_inv_nom": ETA_INV_NOM},
            temperature_model_parameters=TEMPERATURE_MODEL_PARAMETERS["sapm"][
                "close_mount_glass_glass"
            ],
            losses_parameters={**_ZERO_LOSSES, "soiling": arr.losses_percent},
        )
        mc = ModelChain(pv, loc, aoi_model="physical", spectral_model="no_loss",
                        losses_model="pvwatts", name=arr.name)
        mc.run_model(timed)
        ac = mc.results.ac.clip(lower=0.0).fillna(0.0).to_numpy() / 1000.0
        total += ac
    return total


def clearsky_pv_kw(system: SystemSpec, index: pd.DatetimeIndex) -> pd.Series:
    """AC power under clear sky [kW]: an upper envelope, used until weather forecasts are given."""
    return pv_ac_kw(system, clearsky_weather(system, index))


__all__ = ["ArraySpec", "SystemSpec", "clearsky_pv_kw", "clearsky_weather", "pv_ac_kw", "pvlib"]
