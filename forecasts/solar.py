"""Sun position and clear sky, computed once per place and time grid.

A site's forecast needs the sun's position at the same instants several times (weather
regridding, decomposition, every array, the clear-sky envelope); these functions compute it
once with pvlib (NREL SPA, numpy; Kasten-Young air mass; Ineichen clear sky with the Linke
turbidity shipped with pvlib) and keep the last results. Refraction uses pvlib's default
12 °C air temperature rather than each hour's: the apparent zenith moves by less than 0.03°
even at the horizon.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pvlib
from pvlib.location import Location


def _key(location: Location, times: pd.DatetimeIndex) -> tuple | None:
    """A hashable key for a regular time grid at a place, None for irregular grids."""
    ns = times.as_unit("ns").asi8
    if len(ns) > 2 and np.any(np.diff(ns) != ns[1] - ns[0]):
        return None
    step = int(ns[1] - ns[0]) if len(ns) > 1 else 0
    return (location.latitude, location.longitude, location.altitude, times.tz,
            int(ns[0]), len(ns), step)


def _grid(key: tuple) -> tuple[Location, pd.DatetimeIndex]:
    lat, lon, alt, tz, first, n, step = key
    loc = Location(lat, lon, "UTC", alt)
    times = pd.DatetimeIndex(first + step * np.arange(n), tz="UTC").tz_convert(tz)
    return loc, times


def _sun_frame(loc: Location, times: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    sp = loc.get_solarposition(times)
    am_rel = pvlib.atmosphere.get_relative_airmass(sp["apparent_zenith"])
    pressure = pvlib.atmosphere.alt2pres(loc.altitude)
    return {
        "apparent_zenith": sp["apparent_zenith"].to_numpy(),
        "zenith": sp["zenith"].to_numpy(),
        "azimuth": sp["azimuth"].to_numpy(),
        "dni_extra": np.asarray(pvlib.irradiance.get_extra_radiation(times), dtype=float),
        "airmass_relative": np.asarray(am_rel, dtype=float),
        "airmass_absolute": np.asarray(
            pvlib.atmosphere.get_absolute_airmass(am_rel, pressure), dtype=float),
    }


@lru_cache(maxsize=512)
def _sun_cached(key: tuple) -> dict[str, np.ndarray]:
    return _sun_frame(*_grid(key))


def sun(location: Location, times: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    """``apparent_zenith``, ``zenith``, ``azimuth`` [deg], ``dni_extra`` [W/m²],
    ``airmass_relative`` and ``airmass_absolute`` [-] at ``times``."""
    key = _key(location, times)
    return _sun_cached(key) if key else _sun_frame(location, times)


@lru_cache(maxsize=256)
def _linke_by_day(lat: float, lon: float, year: int) -> np.ndarray:
    """Linke turbidity for each day of ``year`` (pvlib's monthly table, interpolated)."""
    days = pd.date_range(f"{year}-01-01 12:00", f"{year}-12-31 12:00", freq="D", tz="UTC")
    return np.asarray(pvlib.clearsky.lookup_linke_turbidity(days, lat, lon), dtype=float)


def _clear(location: Location, times: pd.DatetimeIndex) -> pd.DataFrame:
    s = sun(location, times)
    utc = times.tz_convert("UTC")
    tl = np.empty(len(times))
    for year in np.unique(utc.year):
        sel = utc.year == year
        tl[sel] = _linke_by_day(location.latitude, location.longitude, int(year))[
            utc.dayofyear[sel] - 1]
    with np.errstate(divide="ignore", invalid="ignore"):  # the sun below the horizon
        cs = pvlib.clearsky.ineichen(s["apparent_zenith"], s["airmass_absolute"], tl,
                                     altitude=location.altitude, dni_extra=s["dni_extra"])
    return pd.DataFrame({k: np.asarray(cs[k], dtype=float) for k in ("ghi", "dni", "dhi")},
                        index=times)


@lru_cache(maxsize=512)
def _clear_cached(key: tuple) -> pd.DataFrame:
    return _clear(*_grid(key))


def clear_sky(location: Location, times: pd.DatetimeIndex) -> pd.DataFrame:
    """Ineichen clear-sky ``ghi, dni, dhi`` [W/m²] at ``times`` (a copy, safe to modify)."""
    key = _key(location, times)
    out = _clear_cached(key) if key else _clear(location, times)
    return out.set_axis(times).copy()
