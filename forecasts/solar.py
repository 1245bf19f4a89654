"""Sun position and clear sky, computed once per place and time grid.

A site's forecast needs the sun's position at the same instants several times (weather
regridding, decomposition, every array, the clear-sky envelope); these functions compute it
once with pvlib (NREL SPA, numpy; Kasten-Young air mass; Ineichen clear sky with the Linke
turbidity shipped with pvlib) and keep the last results. Refraction uses pvlib's default
12 °C air temperature rather than each hour's: the apparent zenith moves by less than 0.03°
even at the horizon.

The sites of a fleet share their time grids, and most of SPA's work does not depend on the
place: the Earth's heliocentric position, nutation, obliquity, sidereal time and the sun's
geocentric right ascension and declination. :func:`_sky` runs those steps of
``pvlib.spa.solar_position_numpy`` once per time grid, :func:`_solar_position` the
topocentric steps once per place, with pvlib's own functions in pvlib's order, so the result
is the same, bit for bit, as ``Location.get_solarposition`` (``tests/test_solar.py``). The
Linke turbidity table is read once per cell of its 1/12° grid and year.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pvlib
from pvlib import spa
from pvlib.location import Location

#: pvlib's SPA defaults (``spa_python``): ΔT [s], refraction at the horizon [deg], air
#: temperature for refraction [°C].
DELTA_T_S = 67.0
ATMOS_REFRACT_DEG = 0.5667
REFRACTION_TEMP_C = 12.0


def _key(location: Location, times: pd.DatetimeIndex) -> tuple | None:
    """A hashable key for a regular time grid at a place, None for irregular grids."""
    ns = times.as_unit("ns").asi8
    if len(ns) > 2 and np.any(np.diff(ns) != ns[1] - ns[0]):
        return None
    step = int(ns[1] - ns[0]) if len(ns) > 1 else 0
    return (location.latitude, location.longitude, location.altitude, times.tz,
            int(ns[0]), len(ns), step)


def _times(grid: tuple) -> pd.DatetimeIndex:
    """The instants of a grid key ``(tz, first ns, count, step ns)``."""
    tz, first, n, step = grid
    return pd.DatetimeIndex(first + step * np.arange(n), tz="UTC").tz_convert(tz)


def _grid(key: tuple) -> tuple[Location, pd.DatetimeIndex]:
    lat, lon, alt = key[:3]
    return Location(lat, lon, "UTC", alt), _times(key[3:])


def _geocentric(times: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    """SPA's place-independent steps at ``times``: apparent sidereal time ``v``, the sun's
    geocentric right ascension ``alpha`` and declination ``delta`` [deg], the equatorial
    horizontal parallax ``xi`` [deg] (``pvlib.spa.solar_position_numpy`` up to the local
    hour angle), and the extraterrestrial irradiance ``dni_extra`` [W/m²]."""
    epoch = (pd.Timestamp("1970-01-01") if times.tz is None
             else pd.Timestamp("1970-01-01", tz="UTC").tz_convert(times.tz))
    unixtime = np.array((times - epoch) / pd.Timedelta("1s"))  # as pvlib's spa_python
    jd = spa.julian_day(unixtime)
    jde = spa.julian_ephemeris_day(jd, DELTA_T_S)
    jc = spa.julian_century(jd)
    jce = spa.julian_ephemeris_century(jde)
    jme = spa.julian_ephemeris_millennium(jce)
    r = spa.heliocentric_radius_vector(jme)
    theta = spa.geocentric_longitude(spa.heliocentric_longitude(jme))
    beta = spa.geocentric_latitude(spa.heliocentric_latitude(jme))
    x0 = spa.mean_elongation(jce)
    x1 = spa.mean_anomaly_sun(jce)
    x2 = spa.mean_anomaly_moon(jce)
    x3 = spa.moon_argument_latitude(jce)
    x4 = spa.moon_ascending_longitude(jce)
    nutation = np.empty((2, len(x0)))
    spa.longitude_obliquity_nutation(jce, x0, x1, x2, x3, x4, nutation)
    delta_psi, delta_epsilon = nutation[0], nutation[1]
    epsilon = spa.true_ecliptic_obliquity(spa.mean_ecliptic_obliquity(jme), delta_epsilon)
    lamd = spa.apparent_sun_longitude(theta, delta_psi, spa.aberration_correction(r))
    v = spa.apparent_sidereal_time(spa.mean_sidereal_time(jd, jc), delta_psi, epsilon)
    return {
        "v": v,
        "alpha": spa.geocentric_sun_right_ascension(lamd, epsilon, beta),
        "delta": spa.geocentric_sun_declination(lamd, epsilon, beta),
        "xi": spa.equatorial_horizontal_parallax(r),
        "dni_extra": np.asarray(pvlib.irradiance.get_extra_radiation(times), dtype=float),
    }


@lru_cache(maxsize=64)
def _sky(grid: tuple) -> dict[str, np.ndarray]:
    """:func:`_geocentric` on a grid key ``(tz, first ns, count, step ns)``, cached."""
    return _geocentric(_times(grid))


def _solar_position(loc: Location, sky: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """SPA's topocentric steps at ``loc`` (the rest of ``pvlib.spa.solar_position_numpy``)
    with pvlib's defaults: pressure from the altitude, 12 °C, refraction 0.5667°."""
    lat, lon, elev = loc.latitude, loc.longitude, loc.altitude
    pressure_mbar = pvlib.atmosphere.alt2pres(elev) / 100
    h = spa.local_hour_angle(sky["v"], lon, sky["alpha"])
    u = spa.uterm(lat)
    x = spa.xterm(u, lat, elev)
    y = spa.yterm(u, lat, elev)
    delta_alpha = spa.parallax_sun_right_ascension(x, sky["xi"], h, sky["delta"])
    delta_prime = spa.topocentric_sun_declination(sky["delta"], x, y, sky["xi"], delta_alpha,
                                                  h)
    h_prime = spa.topocentric_local_hour_angle(h, delta_alpha)
    e0 = spa.topocentric_elevation_angle_without_atmosphere(lat, delta_prime, h_prime)
    delta_e = spa.atmospheric_refraction_correction(pressure_mbar, REFRACTION_TEMP_C, e0,
                                                    ATMOS_REFRACT_DEG)
    e = spa.topocentric_elevation_angle(e0, delta_e)
    gamma = spa.topocentric_astronomers_azimuth(h_prime, delta_prime, lat)
    return {"apparent_zenith": spa.topocentric_zenith_angle(e),
            "zenith": spa.topocentric_zenith_angle(e0),
            "azimuth": spa.topocentric_azimuth_angle(gamma)}


def _sun_frame(loc: Location, times: pd.DatetimeIndex,
               grid: tuple | None = None) -> dict[str, np.ndarray]:
    if spa.USE_NUMBA:  # pvlib's spa compiled with numba: let pvlib run it
        sp = loc.get_solarposition(times)
        pos = {k: sp[k].to_numpy() for k in ("apparent_zenith", "zenith", "azimuth")}
        dni_extra = np.asarray(pvlib.irradiance.get_extra_radiation(times), dtype=float)
    else:
        sky = _sky(grid) if grid else _geocentric(times)
        pos, dni_extra = _solar_position(loc, sky), sky["dni_extra"]
    am_rel = pvlib.atmosphere.get_relative_airmass(pos["apparent_zenith"])
    pressure = pvlib.atmosphere.alt2pres(loc.altitude)
    return {
        **pos,
        "dni_extra": dni_extra,
        "airmass_relative": np.asarray(am_rel, dtype=float),
        "airmass_absolute": np.asarray(
            pvlib.atmosphere.get_absolute_airmass(am_rel, pressure), dtype=float),
    }


@lru_cache(maxsize=512)
def _sun_cached(key: tuple) -> dict[str, np.ndarray]:
    return _sun_frame(*_grid(key), grid=key[3:])


def sun(location: Location, times: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    """``apparent_zenith``, ``zenith``, ``azimuth`` [deg], ``dni_extra`` [W/m²],
    ``airmass_relative`` and ``airmass_absolute`` [-] at ``times``."""
    key = _key(location, times)
    return _sun_cached(key) if key else _sun_frame(location, times)


_LINKE: dict[tuple, np.ndarray] = {}


def _linke_cell(lat: float, lon: float) -> tuple:
    """The cell of pvlib's Linke turbidity grid that holds a place (the place itself if this
    pvlib does not say)."""
    to_index = getattr(pvlib.clearsky, "_degrees_to_index", None)
    if to_index is None:
        return (lat, lon)
    return (int(to_index(lat, coordinate="latitude")), int(to_index(lon, coordinate="longitude")))


def _linke_by_day(lat: float, lon: float, year: int) -> np.ndarray:
    """Linke turbidity for each day of ``year`` (pvlib's monthly table, interpolated); read
    once per cell of the table's grid (1/12°), which nearby sites share."""
    key = (_linke_cell(lat, lon), year)
    if key not in _LINKE:
        days = pd.date_range(f"{year}-01-01 12:00", f"{year}-12-31 12:00", freq="D", tz="UTC")
        _LINKE[key] = np.asarray(pvlib.clearsky.lookup_linke_turbidity(days, lat, lon),
                                 dtype=float)
    return _LINKE[key]


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
