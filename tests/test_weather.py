"""Weather files: readers, the time conventions, regridding to 15 minutes, cloud cover."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib
import pytest
from pvlib.location import Location

from forecasts.weather import (
    Weather,
    cloud_cover_to_ghi,
    interval_clearsky,
    prepare,
    read_tmy3,
    read_weather,
    read_weather_csv,
    regrid,
)

LOC = Location(31.81, 119.97, "Asia/Shanghai", 5.0)
TMY3 = Path(pvlib.__file__).parent / "data" / "723170TYA.CSV"


def day(date="2026-06-21", n=96):
    return pd.date_range(pd.Timestamp(date, tz="Asia/Shanghai"), periods=n, freq="15min")


def csv(text: str) -> io.StringIO:
    return io.StringIO(text)


def test_csv_reader_names_and_aliases():
    w = read_weather_csv(csv("Time,GHI,Temperature,wind\n2026-06-21 00:00,0,25,2\n"
                             "2026-06-21 01:00,10,24,3\n"))
    assert list(w.frame.columns) == ["ghi", "temp_air", "wind_speed"]
    assert w.kind == "ghi" and w.label == "start"
    assert str(w.frame.index.tz) == "Asia/Shanghai"


def test_csv_reader_names_missing_and_out_of_range_columns():
    with pytest.raises(ValueError, match=r"needs 'ghi' .* or 'cloud_cover' \(%\); found "
                                         r"\['temp_air'\]"):
        read_weather_csv(csv("timestamp,temp_air\n2026-06-21 00:00,20\n2026-06-21 01:00,21\n"))
    with pytest.raises(ValueError, match=r"'ghi' must be a number in \[0, 1500\] W/m²; 1 row"
                                         r"\(s\) are not, first at 2026-06-21 01:00"):
        read_weather_csv(csv("timestamp,ghi\n2026-06-21 00:00,0\n2026-06-21 01:00,1600\n"))
    with pytest.raises(ValueError, match="'dni' and 'dhi' come together"):
        read_weather_csv(csv("timestamp,ghi,dni\n2026-06-21 00:00,0,0\n2026-06-21 01:00,1,1\n"))
    with pytest.raises(ValueError, match=r"no time column; accepted names \['timestamp', 'time'"):
        read_weather_csv(csv("when,ghi\n1,2\n"))


def test_constant_clear_sky_index_regrids_exactly():
    """Hourly averages labelled at the hour's end that are half the clear-sky average of
    their hour become, every 15 minutes, half the clear-sky average of that quarter hour:
    the clear-sky index is what is interpolated."""
    hours = pd.date_range(pd.Timestamp("2026-06-21 01:00", tz="Asia/Shanghai"), periods=24,
                          freq="h")
    clear = interval_clearsky(LOC, hours, pd.Timedelta(hours=1), "end")
    w = Weather(pd.DataFrame({"ghi": 0.5 * clear["ghi"], "temp_air": 25.0}), "end", "test")
    out = regrid(w, LOC, day())
    want = 0.5 * interval_clearsky(LOC, day(), pd.Timedelta(minutes=15), "start")["ghi"]
    lit = want > 20  # the clear-sky index is defined where the sun gives >= 20 W/m²
    np.testing.assert_allclose(out["ghi"][lit], want[lit], rtol=1e-9)
    assert out["ghi"].iloc[:16].max() == 0.0  # no light smeared into the night before 04:00
    # hourly energy is kept: each hour's four quarters average back to the hourly value
    hourly = out["ghi"].groupby(out.index.floor("h")).mean()
    np.testing.assert_allclose(hourly.to_numpy()[6:18], 0.5 * clear["ghi"].to_numpy()[6:18],
                               rtol=0.01)


def test_labels_shift_by_one_interval():
    """The same hourly numbers mean an hour earlier when labelled at the interval end."""
    hours = pd.date_range(pd.Timestamp("2026-06-21 00:00", tz="Asia/Shanghai"), periods=25,
                          freq="h")
    frame = pd.DataFrame({"temp_air": np.arange(25.0), "ghi": 0.0}, index=hours)
    start = regrid(Weather(frame, "start", "s"), LOC, day())["temp_air"]
    end = regrid(Weather(frame, "end", "e"), LOC, day())["temp_air"]
    # start-labelled: value h sits at h:30, so 12:00-12:15 (midpoint 12:07:30) is 11.625
    assert start.iloc[48] == pytest.approx(12 - 0.5 + 0.125)
    assert end.iloc[48] == pytest.approx(start.iloc[48] + 1.0)


def test_weather_not_covering_the_forecast_is_named():
    w = read_weather_csv(csv("timestamp,ghi,temp_air\n2026-06-21 00:00,0,20\n"
                             "2026-06-21 01:00,0,20\n"))
    with pytest.raises(ValueError, match="covers 2026-06-21 00:30 to 2026-06-21 01:30"):
        regrid(w, LOC, day())


def test_cloud_cover_transform_by_hand():
    """0 % -> clear sky; 100 % -> 35 %; 40 % -> 0.35 + 0.65 x 0.6 = 0.74 of clear sky."""
    np.testing.assert_allclose(cloud_cover_to_ghi(np.array([0, 40, 100]), np.full(3, 800.0)),
                               [800.0, 592.0, 280.0])


def test_cloud_cover_file_gives_full_weather():
    idx = day()
    text = "timestamp,cloud_cover,temp_air\n" + "".join(
        f"{t:%Y-%m-%d %H:%M},40,25\n" for t in pd.date_range(idx[0], periods=25, freq="h"))
    w = read_weather_csv(csv(text))
    assert w.kind == "cloud_cover"
    out = prepare(w, LOC, idx)
    clear = interval_clearsky(LOC, idx, pd.Timedelta(minutes=15), "start")["ghi"]
    np.testing.assert_allclose(out["ghi"], 0.74 * clear, rtol=1e-9)
    zen = LOC.get_solarposition(idx + pd.Timedelta(minutes=7.5))["zenith"].to_numpy()
    closure = out["dni"] * np.cos(np.radians(zen)).clip(min=0) + out["dhi"]
    np.testing.assert_allclose(closure, out["ghi"], atol=1e-6)  # GHI = DNI cos z + DHI


def test_tmy3_reader_hour_ending_and_year():
    w = read_tmy3(TMY3, year=2026)
    assert w.label == "end" and w.kind == "irradiance"
    assert {"ghi", "dni", "dhi", "temp_air", "wind_speed"} <= set(w.frame.columns)
    assert w.frame.index[0] == pd.Timestamp("2026-01-01 01:00", tz="Etc/GMT+5")
    assert read_weather(TMY3, year=2026).source == w.source  # detected by its header line


def _epw_text() -> str:
    header = [
        "LOCATION,Changzhou,JS,CHN,test,583430,31.81,119.97,8.0,5.0",
        "DESIGN CONDITIONS,0", "TYPICAL/EXTREME PERIODS,0", "GROUND TEMPERATURES,0",
        "HOLIDAYS/DAYLIGHT SAVINGS,No,0,0,0", "COMMENTS 1,test", "COMMENTS 2,test",
        "DATA PERIODS,1,1,Data,Sunday,1/1,12/31",
    ]
    rows = []
    for h in range(1, 25):
        ghi = max(0.0, 800 * np.sin(np.pi * (h - 6.5) / 13)) if 6 < h < 20 else 0.0
        fields = [2026, 6, 21, h, 60, "?", 25.0, 15.0, 60, 101000, 0, 0, 300, round(ghi),
                  round(ghi * 0.7), round(ghi * 0.3), 0, 0, 0, 0, 180, 2.0, 5, 5, 20, 9999,
                  9, 999999999, 20, 0.1, 0, 88, 0.2, 0, 1]
        rows.append(",".join(str(f) for f in fields))
    return "\n".join(header + rows) + "\n"


def test_epw_reader(tmp_path):
    p = tmp_path / "site.epw"
    p.write_text(_epw_text())
    w = read_weather(p)
    assert w.label == "end" and w.kind == "irradiance" and "Changzhou" in w.source
    assert w.frame["ghi"].max() == 800 and w.frame["wind_speed"].iloc[0] == 2.0
