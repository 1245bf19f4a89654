"""forecasts.solar: SPA split into a shared geocentric part and a per-place part must give
pvlib's own solar position, bit for bit; the Linke table is read once per grid cell."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pvlib
import pytest
from pvlib.location import Location

from forecasts import solar

PLACES = [(31.78, 119.95, 10.0), (-33.9, 18.4, 50.0), (64.1, -21.9, 0.0), (0.0, 180.0, 3000.0)]
GRIDS = [("Asia/Shanghai", "2026-12-02 00:02:30", 576, "5min"),
         ("Asia/Shanghai", "2025-06-21", 96 * 366, "15min"),
         ("UTC", "2024-02-28", 2000, "1h")]


@pytest.mark.parametrize("tz, first, n, freq", GRIDS)
def test_sun_is_pvlib_spa_bit_for_bit(tz, first, n, freq):
    """Every place on every grid (leap day, southern and polar sites, 3 km altitude, the
    date line): zenith, apparent zenith, azimuth and extraterrestrial irradiance equal
    ``Location.get_solarposition`` and ``get_extra_radiation`` exactly, not within a
    tolerance."""
    times = pd.date_range(first, periods=n, freq=freq, tz=tz)
    for lat, lon, alt in PLACES:
        loc = Location(lat, lon, tz, alt)
        ref = loc.get_solarposition(times)
        got = solar.sun(loc, times)
        for col in ("apparent_zenith", "zenith", "azimuth"):
            assert np.array_equal(got[col], ref[col].to_numpy()), (lat, lon, col)
        assert np.array_equal(got["dni_extra"],
                              pvlib.irradiance.get_extra_radiation(times).to_numpy())


def test_irregular_grid_takes_the_uncached_path_with_the_same_result():
    times = pd.DatetimeIndex(["2026-03-20 08:00", "2026-03-20 08:05", "2026-03-20 12:31"],
                             tz="Asia/Shanghai")
    loc = Location(31.78, 119.95, "Asia/Shanghai", 10.0)
    assert solar._key(loc, times) is None
    got = solar.sun(loc, times)
    ref = loc.get_solarposition(times)
    assert np.array_equal(got["azimuth"], ref["azimuth"].to_numpy())


def test_nearby_places_share_the_geocentric_terms_and_linke_cell(monkeypatch):
    """Two places 1 km apart in one cell of pvlib's 1/12° Linke grid: the time grid's
    geocentric terms are computed once and the turbidity file is read once; a place in
    another cell reads it again."""
    times = pd.date_range("2031-05-01", periods=96, freq="15min", tz="Asia/Shanghai")
    calls = {"sky": 0, "linke": 0}
    geo, lookup = solar._geocentric, pvlib.clearsky.lookup_linke_turbidity

    def count_geo(t):
        calls["sky"] += 1
        return geo(t)

    def count_linke(*a, **k):
        calls["linke"] += 1
        return lookup(*a, **k)

    monkeypatch.setattr(solar, "_geocentric", count_geo)
    monkeypatch.setattr(pvlib.clearsky, "lookup_linke_turbidity", count_linke)
    solar._sky.cache_clear()
    solar._LINKE.clear()
    a = Location(31.7800, 119.9500, "Asia/Shanghai", 5.0)
    b = Location(31.7890, 119.9500, "Asia/Shanghai", 5.0)  # 1 km north, same 1/12° cell
    c = Location(32.2000, 119.9500, "Asia/Shanghai", 5.0)  # 47 km north, another cell
    assert solar._linke_cell(a.latitude, a.longitude) == solar._linke_cell(b.latitude,
                                                                            b.longitude)
    assert solar._linke_cell(a.latitude, a.longitude) != solar._linke_cell(c.latitude,
                                                                            c.longitude)
    ca, cb = solar.clear_sky(a, times), solar.clear_sky(b, times)
    assert calls == {"sky": 1, "linke": 1}
    solar.clear_sky(c, times)
    assert calls == {"sky": 1, "linke": 2}
    # the shared turbidity is the one pvlib gives each place
    days = pd.date_range("2031-01-01 12:00", "2031-12-31 12:00", freq="D", tz="UTC")
    assert np.array_equal(solar._linke_by_day(b.latitude, b.longitude, 2031),
                          lookup(days, b.latitude, b.longitude).to_numpy())
    assert (ca["ghi"].max() > 900.0) and np.isfinite(cb.to_numpy()).all()
