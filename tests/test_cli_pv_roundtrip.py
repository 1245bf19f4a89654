"""The calibration round trip from the command line: calibrate a system file, forecast with
the result, fit bands for another kind of weather, and the time conventions on the way."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from test_cli_forecast import SYSTEM, _measured, run, spec

from forecasts.pv import clearsky_weather
from forecasts.weather import Weather
from models.errors import InvalidInputError
from vpp.cli_forecast import MAX_DAYS, _span
from vpp.pv_inputs import load_system_model


def test_calibration_output_is_a_system_file_the_forecast_takes(tmp_path):
    (tmp_path / "system.json").write_text(json.dumps(SYSTEM))
    _measured(tmp_path)  # 30 days of a 120 kWp array under varying weather
    r = run("pv", "calibrate", "--system", str(tmp_path / "system.json"), "--weather",
            str(tmp_path / "wx.csv"), "--measured", str(tmp_path / "power.csv"),
            "--out", str(tmp_path / "cal.json"))
    assert r.exit_code == 0, r.output
    model = load_system_model(tmp_path / "cal.json")  # validates as a system file
    assert abs(model.system.arrays[0].dc_kwp / 120.0 - 1) < 0.01
    assert set(model.bands) == {"irradiance"}  # the calibration weather had GHI+DNI+DHI
    assert model.decomposition == "dirint"
    doc = json.loads((tmp_path / "cal.json").read_text())
    assert doc["latitude"] == 31.81 and doc["arrays"][0]["ac_kw"] == 90
    assert abs(doc["calibration"]["after"]["daily_bias"]) < 0.02
    nominal = run("pv", "forecast", "--system", str(tmp_path / "system.json"), "--weather",
                  str(tmp_path / "wx.csv"), "--start", "2026-05-10", "--out",
                  str(tmp_path / "nominal.csv"))
    fitted = run("pv", "forecast", "--system", str(tmp_path / "cal.json"), "--weather",
                 str(tmp_path / "wx.csv"), "--start", "2026-05-10", "--out",
                 str(tmp_path / "fitted.csv"))
    assert nominal.exit_code == 0 and fitted.exit_code == 0, fitted.output
    assert "bands: fitted for this system (irradiance)" in fitted.stderr
    assert "bands: shipped defaults (irradiance)" in nominal.stderr
    a = pd.read_csv(tmp_path / "nominal.csv")["p50_kw"].sum()
    b = pd.read_csv(tmp_path / "fitted.csv")["p50_kw"].sum()
    assert 1.15 < b / a < 1.21  # 120 kWp instead of 100, a little clipping at 90 kW


def test_save_and_bands_for_any_system_file(tmp_path):
    """--save keeps a system file's calibration beside it; `pv bands` fits cloud-cover bands
    on past cloud-cover forecasts and the power measured then, and the forecast uses them."""
    (tmp_path / "system.json").write_text(json.dumps(SYSTEM))
    _measured(tmp_path)
    r = run("pv", "calibrate", "--system", str(tmp_path / "system.json"), "--weather",
            str(tmp_path / "wx.csv"), "--measured", str(tmp_path / "power.csv"), "--save")
    assert r.exit_code == 0, r.output
    saved = tmp_path / "system.calibrated.json"
    assert saved.is_file() and "irradiance" in load_system_model(saved).bands
    wx = pd.read_csv(tmp_path / "wx.csv", index_col=0)
    cc = pd.DataFrame({"cloud_cover": np.where(wx["ghi"] > 0, 40.0, 40.0),
                       "temp_air": wx["temp_air"]}, index=wx.index)
    cc.index.name = "time"
    cc.to_csv(tmp_path / "cc.csv")
    r = run("pv", "bands", "--system", str(saved), "--weather", str(tmp_path / "cc.csv"),
            "--measured", str(tmp_path / "power.csv"), "--out", str(tmp_path / "cal2.json"))
    assert r.exit_code == 0, r.output
    assert "bands for forecasts from cloud_cover weather" in r.stdout
    model = load_system_model(tmp_path / "cal2.json")
    assert set(model.bands) == {"irradiance", "cloud_cover"}
    doc = json.loads((tmp_path / "cal2.json").read_text())
    assert "fitted" in doc["calibration"]  # the calibration record is kept
    r = run("pv", "forecast", "--system", str(tmp_path / "cal2.json"), "--weather",
            str(tmp_path / "cc.csv"), "--start", "2026-05-10")
    assert r.exit_code == 0, r.output
    assert "bands: fitted for this system (cloud_cover)" in r.stderr
    r = run("pv", "bands", "--site", "CZ-MG-01", "--weather", str(tmp_path / "cc.csv"),
            "--measured", str(tmp_path / "power.csv"), "--out", str(tmp_path / "x.json"))
    assert r.exit_code == 2 and "--out writes a system file" in r.output


def test_the_whole_days_of_the_weather_include_the_last_one(tmp_path):
    """30-minute rows from 15 July 00:00 to 16 July 23:30: start-labelled they cover both
    days to midnight, so the forecast has 2 x 96 intervals ending at 16 July 23:45; the same
    rows end-labelled (00:30 .. 17 July 00:00) cover the same two days."""
    (tmp_path / "system.json").write_text(json.dumps(SYSTEM))
    idx = pd.date_range(pd.Timestamp("2026-07-15", tz="Asia/Shanghai"), periods=96,
                        freq="30min")
    w = clearsky_weather(spec(), idx)
    for label, shift in (("start", "0min"), ("end", "30min")):
        out = w.copy()
        out.index = (idx + pd.Timedelta(shift)).tz_localize(None)
        out.index.name = "timestamp"
        out.to_csv(tmp_path / f"{label}.csv")
        r = run("pv", "forecast", "--system", str(tmp_path / "system.json"), "--weather",
                str(tmp_path / f"{label}.csv"), "--label", label, "--out",
                str(tmp_path / "pv.csv"))
        assert r.exit_code == 0, r.output
        f = pd.read_csv(tmp_path / "pv.csv")
        assert len(f) == 192 and f["timestamp"].iloc[-1].startswith("2026-07-16 23:45")


def test_daylight_saving_time_in_the_cli(tmp_path):
    """A New York system with a weather file in local time across the night clocks go back:
    an error naming the file, the column and the line, or, with --ambiguous infer, a
    forecast."""
    (tmp_path / "system.json").write_text(json.dumps({**SYSTEM, "latitude": 40.7,
                                                      "longitude": -74.0,
                                                      "tz": "America/New_York"}))
    idx = pd.date_range(pd.Timestamp("2026-10-31", tz="America/New_York"),
                        pd.Timestamp("2026-11-03", tz="America/New_York"), freq="30min")
    w = pd.DataFrame({"ghi": 0.0, "temp_air": 10.0}, index=idx)
    w.index = idx.tz_localize(None)
    w.index.name = "timestamp"
    w.to_csv(tmp_path / "wx.csv")
    args = ["pv", "forecast", "--system", str(tmp_path / "system.json"), "--weather",
            str(tmp_path / "wx.csv"), "--start", "2026-11-01"]
    r = run(*args)
    # rows every 30 min from 31 Oct 00:00: 1 Nov 01:00 EDT is row 51, line 52
    assert r.exit_code == 2
    assert "wx.csv: column 'timestamp': 4 local time(s) occur twice in America/New_York" \
        in r.output and "first '2026-11-01 01:00:00' on line 52" in r.output
    assert "Traceback" not in r.output
    r = run(*args, "--ambiguous", "infer")
    assert r.exit_code == 0, r.output
    assert len(pd.read_csv(io.StringIO(r.stdout))) == 100  # a 25-hour day


def test_measured_csv_time_header_and_instant_label(tmp_path):
    (tmp_path / "system.json").write_text(json.dumps(SYSTEM))
    _measured(tmp_path)
    p = pd.read_csv(tmp_path / "power.csv").rename(columns={"timestamp": "time"})
    p.to_csv(tmp_path / "power_time.csv", index=False)
    r = run("pv", "calibrate", "--system", str(tmp_path / "system.json"), "--weather",
            str(tmp_path / "wx.csv"), "--measured", str(tmp_path / "power_time.csv"),
            "--measured-label", "instant")
    assert r.exit_code == 0, r.output
    assert "capacity_factor" in r.stdout


def test_days_and_start_end_share_one_limit(tmp_path):
    (tmp_path / "system.json").write_text(json.dumps(SYSTEM))
    r = run("pv", "forecast", "--system", str(tmp_path / "system.json"), "--days",
            str(MAX_DAYS + 1))
    assert r.exit_code == 2 and "732 is not in the range 1<=x<=731" in r.output
    r = run("pv", "forecast", "--system", str(tmp_path / "system.json"), "--start",
            "2026-01-01", "--end", "2028-01-02")
    assert r.exit_code == 2
    assert "the forecast spans 732 days (2026-01-01..2028-01-02); at most 731" in r.output
    s = _span(None, pd.Timestamp("2026-01-01").to_pydatetime(), None, MAX_DAYS,
              "Asia/Shanghai")
    assert len(s) == 96 * MAX_DAYS
    s = _span(None, pd.Timestamp("2026-01-01").to_pydatetime(),
              pd.Timestamp("2027-12-31").to_pydatetime(), None, "Asia/Shanghai")
    assert len(s) == 96 * 730
    # --end and --days together were --end silently ignored; both is now an error
    with pytest.raises(InvalidInputError, match="--end 2026-01-03 and --days 5 both given"):
        _span(None, pd.Timestamp("2026-01-01").to_pydatetime(),
              pd.Timestamp("2026-01-03").to_pydatetime(), 5, "Asia/Shanghai")
    # weather from 2026-01-01 00:00 to 2026-01-10 23:00 (+08:00, start-labelled hours) and
    # --end 2026-01-04 without --start: the weather's first day to --end, 4 days, not all 10
    idx = pd.date_range("2026-01-01", periods=240, freq="h", tz="Asia/Shanghai")
    wx = Weather(pd.DataFrame({"ghi": 0.0}, index=idx), "start", "test weather")
    s = _span(wx, None, pd.Timestamp("2026-01-04").to_pydatetime(), None, "Asia/Shanghai")
    assert (s[0], s[-1], len(s)) == (idx[0], pd.Timestamp("2026-01-04 23:45+08:00"), 4 * 96)
    assert len(_span(wx, None, None, None, "Asia/Shanghai")) == 10 * 96
    assert len(_span(wx, None, None, 2, "Asia/Shanghai")) == 2 * 96


def test_fit_errors_command(tmp_path):
    idx = pd.date_range(pd.Timestamp("2025-01-01", tz="Asia/Shanghai"), periods=96 * 60,
                        freq="15min")
    h = idx.hour + idx.minute / 60 + 0.125
    clear = np.clip(np.sin(np.pi * (h - 6) / 12), 0, None) * 100.0
    rng = np.random.default_rng(4)
    p50 = clear * np.clip(0.7 + np.repeat(rng.normal(0, 0.1, 60), 96), 0, 1)
    naive = idx.tz_localize(None)
    pd.DataFrame({"timestamp": naive, "p50_kw": p50, "clear_kw": clear}) \
        .to_csv(tmp_path / "fc.csv", index=False)
    pd.DataFrame({"time": naive, "ac_power_kw": clear * 0.7}) \
        .to_csv(tmp_path / "m.csv", index=False)
    r = run("pv", "fit-errors", "--measured", str(tmp_path / "m.csv"), "--forecast",
            str(tmp_path / "fc.csv"), "--out", str(tmp_path / "errors.toml"))
    assert r.exit_code == 0, r.output
    assert "[pv_forecast] from 60 days" in r.stdout
    from forecasts.synthetic import load_error_model

    m = load_error_model(tmp_path / "errors.toml")
    # errors of one clear-sky-index value per day, sd 0.1: the model's total spread
    total = np.hypot(m.pv_daily_sigma, m.pv_intraday_sigma)
    assert 0.08 < total < 0.12


def test_bad_system_and_dataset_files_are_named(tmp_path):
    bad = {**SYSTEM, "bands": {"ghi": {"edges": [0, 9], "q10": [-0.1], "q90": [0.1],
                                       "kmax": 2.0}}}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    r = run("pv", "forecast", "--system", str(tmp_path / "bad.json"))
    assert r.exit_code == 2 and "bad.json" in r.output and "kmax" in r.output
    (tmp_path / "odd.json").write_text(json.dumps({**SYSTEM, "bands": {"wind": {}}}))
    r = run("pv", "forecast", "--system", str(tmp_path / "odd.json"))
    assert r.exit_code == 2 and "bands.wind" in r.output
    r = run("pv", "backtest", "--dataset", "nope")
    assert r.exit_code == 2
    assert "dataset nope: neither a shipped dataset (serf-east, pvdaq-50) nor a file" in r.output


def test_stored_site_calibrations_keep_bands_by_kind(tmp_path):
    """A calibration file written before bands were kept by kind has one [bands] table: it
    serves forecasts from measured irradiance and GHI; a table for an unknown kind is an
    error naming the file."""
    from vpp.catalog import Catalog
    from vpp.pv_inputs import site_pv_model

    site = Catalog.load().fleet.site("CZ-MG-03")
    (tmp_path / "CZ-MG-03.toml").write_text(
        'site_id = "CZ-MG-03"\ndecomposition = "erbs"\n\n[bands]\nedges = [0.0, 9.0]\n'
        'q10 = [-0.2]\nq90 = [0.2]\nsource = "old"\n')
    model = site_pv_model(site, tmp_path)
    assert set(model.bands) == {"irradiance", "ghi"} and model.decomposition == "erbs"
    (tmp_path / "CZ-MG-03.toml").write_text(
        'site_id = "CZ-MG-03"\n\n[bands.fog]\nedges = [0.0, 9.0]\nq10 = [-0.2]\n'
        'q90 = [0.2]\nsource = "x"\n')
    with pytest.raises(InvalidInputError, match=r"CZ-MG-03\.toml: bands for unknown weather "
                                                r"kinds \['fog'\]"):
        site_pv_model(site, tmp_path)
