"""``vpp pv …`` and ``vpp load …`` commands, and plans that use weather and calibrations."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import numpy as np
import pandas as pd
from click.testing import CliRunner
from conftest import assert_valid_plan

from forecasts.load import day_class
from forecasts.pv import ArraySpec, SystemSpec, clearsky_weather, pv_ac_kw
from vpp.cli import main

SYSTEM = {"latitude": 31.81, "longitude": 119.97, "altitude_m": 5,
          "arrays": [{"name": "roof", "dc_kwp": 100, "ac_kw": 90, "tilt_deg": 20,
                      "azimuth_deg": 180}]}


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def spec() -> SystemSpec:
    return SystemSpec(31.81, 119.97, 5.0, (ArraySpec("roof", 100.0, 90.0, 20.0, 180.0),))


def write_weather(path, first="2026-07-15", days=1, scale=1.0):
    idx = pd.date_range(pd.Timestamp(first, tz="Asia/Shanghai"), periods=96 * days + 1,
                        freq="15min")
    w = clearsky_weather(spec(), idx)
    for c in ("ghi", "dni", "dhi"):
        w[c] *= scale
    w.index = w.index.tz_localize(None)
    w.index.name = "timestamp"
    w.to_csv(path)
    return w


def test_pv_forecast_for_a_system_file(tmp_path):
    (tmp_path / "system.json").write_text(json.dumps(SYSTEM))
    write_weather(tmp_path / "wx.csv")
    out = tmp_path / "pv.csv"
    r = run("pv", "forecast", "--system", str(tmp_path / "system.json"), "--weather",
            str(tmp_path / "wx.csv"), "--start", "2026-07-15", "--out", str(out))
    assert r.exit_code == 0, r.output
    f = pd.read_csv(out, index_col="timestamp")
    assert len(f) == 96 and list(f.columns[:3]) == ["p10_kw", "p50_kw", "p90_kw"]
    assert (f["p10_kw"] <= f["p50_kw"] + 1e-9).all() and (f["p50_kw"] <= f["p90_kw"] + 1e-9).all()
    day = pd.date_range(pd.Timestamp("2026-07-15", tz="Asia/Shanghai"), periods=96,
                        freq="15min")
    direct = pv_ac_kw(spec(), clearsky_weather(spec(), day)).sum()
    assert abs(f["p50_kw"].sum() / direct - 1) < 2e-3  # the clear-sky file gives clear sky
    assert "P50 kWh" in r.stderr and "wx.csv" in r.stderr


def test_pv_forecast_errors_are_named_not_tracebacks(tmp_path):
    (tmp_path / "system.json").write_text(json.dumps({**SYSTEM, "latitude": 120}))
    r = run("pv", "forecast", "--system", str(tmp_path / "system.json"))
    assert r.exit_code == 2 and "latitude" in r.output and "Traceback" not in r.output
    (tmp_path / "system.json").write_text(json.dumps(SYSTEM))
    (tmp_path / "bad.csv").write_text("timestamp,ghi,temp_air\n2026-07-15 00:00,-5,20\n"
                                      "2026-07-15 01:00,0,20\n")
    r = run("pv", "forecast", "--system", str(tmp_path / "system.json"), "--weather",
            str(tmp_path / "bad.csv"))
    assert r.exit_code == 2 and "'ghi' must be a number in [0, 1500] W/m²" in r.output
    r = run("pv", "forecast", "--site", "CZ-MG-01", "--system", str(tmp_path / "system.json"))
    assert r.exit_code == 2 and "exactly one of --site ID or --system FILE" in r.output
    # each of these was a traceback
    for args, message in (
            (("--end", "2000-01-01"), "--end 2000-01-01 is before --start "),
            (("--start", "0001-01-01"), "--start 0001-01-01: dates from 2000-01-01 to "
                                        "2099-12-31 are supported"),
            (("--out", str(tmp_path / "no" / "such" / "x.csv")), "cannot write the file")):
        r = run("pv", "forecast", "--site", "CZ-MG-01", *args)
        assert r.exit_code == 2 and message in r.output, r.output
    (tmp_path / "mars.json").write_text(json.dumps({**SYSTEM, "tz": "Mars/Base"}))
    r = run("pv", "forecast", "--system", str(tmp_path / "mars.json"))
    assert r.exit_code == 2 and "unknown time zone 'Mars/Base'" in r.output


def _measured(tmp_path, dc_kwp=120.0):
    """Thirty days of weather and the power of a 120 kWp array under it."""
    w = write_weather(tmp_path / "wx.csv", "2026-05-01", 30)
    rng = np.random.default_rng(3)
    k = np.repeat(rng.uniform(0.3, 1.0, 31), 96)[: len(w)]
    for c in ("ghi", "dni", "dhi"):
        w[c] *= k
    w.to_csv(tmp_path / "wx.csv")
    w.index = w.index.tz_localize("Asia/Shanghai")
    truth = SystemSpec(31.81, 119.97, 5.0, (ArraySpec("roof", dc_kwp, 90.0, 20.0, 180.0),))
    pv = pv_ac_kw(truth, w)
    pd.DataFrame({"timestamp": pv.index.tz_localize(None), "ac_power_kw": pv.to_numpy()}) \
        .to_csv(tmp_path / "power.csv", index=False)


def test_pv_calibrate_prints_fit_and_errors(tmp_path):
    (tmp_path / "system.json").write_text(json.dumps(SYSTEM))
    _measured(tmp_path)
    r = run("pv", "calibrate", "--system", str(tmp_path / "system.json"), "--weather",
            str(tmp_path / "wx.csv"), "--measured", str(tmp_path / "power.csv"),
            "--out", str(tmp_path / "cal.json"))
    assert r.exit_code == 0, r.output
    assert "dc_kwp" in r.stdout and "before (nominal)" in r.stdout
    rec = json.loads((tmp_path / "cal.json").read_text())
    assert abs(rec["arrays"][0]["dc_kwp"] / 120.0 - 1) < 0.01
    cal = rec["calibration"]
    assert cal["after"]["nrmse"] < 0.01 < cal["before"]["nrmse"]
    assert "daily-energy bias on the calibration data: " in r.stdout


def test_saved_calibration_changes_the_sites_plan(tmp_path):
    """CZ-MG-03 measured at 1.2 x what its nominal arrays give: `pv calibrate --site --save`
    stores the fit, and the site's plan then forecasts ≈20 % more PV and names the file."""
    from vpp.catalog import Catalog
    from vpp.pv_inputs import site_pv_model

    model = site_pv_model(Catalog.load().fleet.site("CZ-MG-03"))
    w = write_weather(tmp_path / "wx.csv", "2026-05-01", 20)
    w.index = w.index.tz_localize("Asia/Shanghai")
    k = np.repeat(np.random.default_rng(5).uniform(0.3, 1.0, 21), 96)[: len(w)]
    for c in ("ghi", "dni", "dhi"):
        w[c] *= k
    w.tz_localize(None).rename_axis("timestamp").to_csv(tmp_path / "wx.csv")
    truth = SystemSpec(model.system.latitude, model.system.longitude, model.system.altitude_m,
                       tuple(replace(a, dc_kwp=1.2 * a.dc_kwp) for a in model.system.arrays))
    pv = pv_ac_kw(truth, w)
    pd.DataFrame({"timestamp": pv.index.tz_localize(None), "ac_power_kw": pv.to_numpy()}) \
        .to_csv(tmp_path / "power.csv", index=False)
    cal_dir = tmp_path / "cal"
    r = run("--calibrations", str(cal_dir), "pv", "calibrate", "--site", "CZ-MG-03",
            "--weather", str(tmp_path / "wx.csv"), "--measured", str(tmp_path / "power.csv"),
            "--save")
    assert r.exit_code == 0, r.output
    assert (cal_dir / "CZ-MG-03.toml").is_file()
    assert "capacity_factor                1.2" in r.stdout
    before = json.loads(run("plan", "--site", "CZ-MG-03", "--date", "2026-07-15", "--format",
                            "json").stdout)
    r = run("--calibrations", str(cal_dir), "plan", "--site", "CZ-MG-03", "--date",
            "2026-07-15", "--format", "json")
    assert r.exit_code == 0, r.output
    after = json.loads(r.stdout)
    assert_valid_plan(after)
    ratio = sum(after["inputs"]["pv_forecast_kw"]) / sum(before["inputs"]["pv_forecast_kw"])
    assert 1.15 < ratio < 1.21  # +20 % DC, a little inverter clipping
    assert "CZ-MG-03.toml" in after["sources"]["pv_forecast"]

    # the service plans with the same calibrations (VPP_CALIBRATIONS / --calibrations)
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.auth import create_key
    from service.db import session_factory

    app = create_app(f"sqlite:///{tmp_path / 'svc.sqlite3'}", calibrations=str(cal_dir))
    with session_factory(app.state.engine)() as s:
        key = create_key(s, "admin")
    r = TestClient(app).post("/v1/plans", headers={"X-API-Key": key},
                             json={"site_id": "CZ-MG-03", "date": "2026-07-15"})
    assert r.status_code == 201, r.text
    served = r.json()
    assert served["inputs"]["pv_forecast_kw"] == after["inputs"]["pv_forecast_kw"]
    assert "CZ-MG-03.toml" in served["sources"]["pv_forecast"]


def test_plan_with_a_weather_file_records_it(tmp_path):
    write_weather(tmp_path / "overcast.csv", scale=0.3)
    r = run("plan", "--site", "CZ-MG-01", "--date", "2026-07-15", "--format", "json",
            "--weather", str(tmp_path / "overcast.csv"))
    assert r.exit_code == 0, r.output
    p = json.loads(r.stdout)
    assert_valid_plan(p)
    assert "overcast.csv" in p["sources"]["pv_forecast"]
    assert p["sources"]["pv_forecast"].startswith("P50")
    assert len(p["inputs"]["pv_p10_kw"]) == 96
    clim = json.loads(run("plan", "--site", "CZ-MG-01", "--date", "2026-07-15", "--format",
                          "json").stdout)
    assert "climatology" in clim["sources"]["pv_forecast"]
    assert sum(p["inputs"]["pv_forecast_kw"]) < 0.6 * sum(clim["inputs"]["pv_forecast_kw"])


def test_load_forecast_and_backtest(tmp_path):
    idx = pd.date_range(pd.Timestamp("2025-08-01", tz="Asia/Shanghai"),
                        pd.Timestamp("2025-10-01", tz="Asia/Shanghai"), freq="15min",
                        inclusive="left")
    level = {"workday": 100.0, "rest": 50.0, "holiday": 20.0}
    load = [level[day_class(d)] for d in idx.date]
    buf = io.StringIO()
    pd.DataFrame({"timestamp": idx.tz_localize(None), "load_kw": load}).to_csv(buf, index=False)
    (tmp_path / "m.csv").write_text(buf.getvalue())
    r = run("load", "forecast", "--history", str(tmp_path / "m.csv"), "--date", "2025-09-28",
            "--out", str(tmp_path / "f.csv"))
    assert r.exit_code == 0, r.output
    assert (pd.read_csv(tmp_path / "f.csv")["load_kw"] == 100.0).all()  # 调休 Sunday
    r = run("load", "backtest", f"CZ-MG-01={tmp_path / 'm.csv'}", "--days", "14")
    assert r.exit_code == 0, r.output
    assert "CZ-MG-01" in r.stdout and "0.00%" in r.stdout
