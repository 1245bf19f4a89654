"""Screening a measured history (clock shifts, stuck values, outages, clipping) and what the
calibration does with it: fit on the clean part, match the energy, warn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasts.calibration import calibrate
from forecasts.pv import ArraySpec, SystemSpec, clearsky_weather, pv_ac_kw
from forecasts.pv_forecast import PVModel, forecast_pv
from forecasts.quality import ClockShift, correct_shifts, screen_power
from forecasts.weather import Weather
from vpp.pv_inputs import load_pv_dataset

TZ = "Asia/Shanghai"
NOMINAL = SystemSpec(31.81, 119.97, 5.0, (ArraySpec("roof", 100.0, 90.0, 20.0, 180.0),))
TRUTH = SystemSpec(31.81, 119.97, 5.0, (ArraySpec("roof", 120.0, 90.0, 20.0, 180.0),))


def weather(days: int = 40) -> Weather:
    """Clear sky scaled by a seeded daily clear-sky index in 0.3..1."""
    idx = pd.date_range(pd.Timestamp("2026-05-01", tz=TZ), periods=96 * days, freq="15min")
    cs = clearsky_weather(NOMINAL, idx)
    k = np.repeat(np.random.default_rng(7).uniform(0.3, 1.0, days), 96)
    w = cs.copy()
    for c in ("ghi", "dni", "dhi"):
        w[c] = cs[c] * k
    w["temp_air"] = 18.0 + 10.0 * k
    return Weather(w, "start", "synthetic")


def messy(w: Weather) -> pd.Series:
    """120 kWp measured with a logger an hour late on 11-25 May, a stuck reading on 31 May
    11:00-12:15 and no output at all on 5 June."""
    clean = pv_ac_kw(TRUTH, w.frame)
    m = clean.copy()
    late = (m.index >= pd.Timestamp("2026-05-11", tz=TZ)) & \
        (m.index < pd.Timestamp("2026-05-26", tz=TZ))
    m[late] = clean.shift(4)[late]  # the value stamped t was produced at t - 1 h
    stuck = pd.Timestamp("2026-05-31 11:00", tz=TZ)
    m[stuck:stuck + pd.Timedelta(minutes=75)] = m[stuck]
    m["2026-06-05"] = 0.0
    return m


def test_screening_finds_what_was_planted():
    w = weather()
    m = messy(w)
    fc = forecast_pv(PVModel(NOMINAL), m.index, w).frame
    q = screen_power(m, fc["p50_kw"], fc["clear_kw"], 90.0, fix_shifts=True)
    assert q.shifts == (ClockShift(pd.Timestamp("2026-05-11", tz=TZ),
                                   pd.Timestamp("2026-05-25", tz=TZ), 60),)
    assert q.corrected
    # shifted back: the corrected series is the clean one inside the period
    clean = pv_ac_kw(TRUTH, w.frame)
    sel = slice("2026-05-12", "2026-05-24")
    assert np.allclose(q.measured_kw[sel], clean[sel])
    # the stuck reading repeats the 11:00 value five more times: those five are flagged
    stuck = q.stuck[q.stuck].index.strftime("%m-%d %H:%M").tolist()
    assert stuck == ["05-31 11:15", "05-31 11:30", "05-31 11:45", "05-31 12:00",
                     "05-31 12:15"]
    outage_days = set(q.outage[q.outage].index.strftime("%m-%d"))
    assert outage_days == {"06-05"}
    assert not q.clean["2026-06-05"].any()
    assert q.clip_level_kw is None
    lines = "\n".join(q.lines())
    assert "clock shift 2026-05-11..2026-05-25: clock 60 min late - corrected" in lines
    assert "outage or snow (no output under light):" in lines and "on 1 days" in lines


def test_calibration_on_the_clean_part_recovers_the_capacity():
    """On the messy history the screened fit finds 120 kWp within 1 %; fitting every
    daylight interval as it comes (the zero day, the late hour) finds 2 % less (117.4)."""
    w = weather()
    m = messy(w)
    good = calibrate(PVModel(NOMINAL), w, m, fit_gamma=False, fix_shifts=True)
    raw = calibrate(PVModel(NOMINAL), w, m, fit_gamma=False, screen=False)
    assert good.fitted["dc_kwp"] == pytest.approx(120.0, rel=0.01)
    assert raw.fitted["dc_kwp"] < 0.985 * 120.0
    assert abs(good.after.daily_bias) < 0.005
    assert good.quality is not None and raw.quality is None
    unfixed = calibrate(PVModel(NOMINAL), w, m, fit_gamma=False)
    assert any("1 clock shift(s) found and not corrected" in x for x in unfixed.warnings)


def test_energy_matching_removes_the_bias_of_noisy_weather():
    """Weather with 40 % random error per interval (as satellite data have against one roof):
    least squares alone under-fits the capacity (errors in the input flatten the slope), and
    the calibration period's daily energy comes out 8 % low; matching the energy leaves no
    bias, and the summary warns about the first."""
    w = weather()
    wide = SystemSpec(31.81, 119.97, 5.0, (ArraySpec("roof", 100.0, 200.0, 20.0, 180.0),))
    truth = SystemSpec(31.81, 119.97, 5.0, (ArraySpec("roof", 90.0, 200.0, 20.0, 180.0),))
    f = w.frame.copy()
    f["temp_air"] = 25.0
    m = pv_ac_kw(truth, f)
    noise = np.clip(1 + 0.4 * np.random.default_rng(3).standard_normal(len(f)), 0.2, None)
    for c in ("ghi", "dni", "dhi"):
        f[c] = f[c] * noise
    noisy = Weather(f, "start", "noisy")
    ls = calibrate(PVModel(wide), noisy, m, fit_gamma=False, match_energy=False)
    en = calibrate(PVModel(wide), noisy, m, fit_gamma=False)
    assert ls.after.daily_bias < -0.05
    assert abs(en.after.daily_bias) < 0.002
    assert en.fitted["capacity_factor"] > en.fitted["capacity_factor_least_squares"]
    assert any(x.startswith("daily-energy bias on the calibration data is -") and
               "(beyond ±2%)" in x for x in ls.warnings)
    assert not any("daily-energy bias" in x for x in en.warnings)


def test_clipping_below_the_rating_replaces_the_rating():
    """An inverter that clips at 70 kW behind a nameplate rating of 90 kW: the screening
    finds the level and the fit uses it, with a warning."""
    w = weather()
    clipped = SystemSpec(31.81, 119.97, 5.0, (ArraySpec("roof", 120.0, 70.0, 20.0, 180.0),))
    m = pv_ac_kw(clipped, w.frame)
    cal = calibrate(PVModel(NOMINAL), w, m, fit_gamma=False)
    assert cal.quality.clip_level_kw == pytest.approx(70.0, abs=0.01)
    assert cal.fitted["ac_kw"] == pytest.approx(70.0, abs=0.01)
    assert cal.fitted["dc_kwp"] == pytest.approx(120.0, rel=0.01)
    assert "the measured power clips at 70.000 kW, not at the inverter rating 90 kW" in \
        cal.warnings[0]


def test_correct_shifts_moves_values_back():
    idx = pd.date_range(pd.Timestamp("2026-05-01", tz=TZ), periods=8, freq="15min")
    s = pd.Series(np.arange(8.0), index=idx)
    out = correct_shifts(s, (ClockShift(idx[0].normalize(), idx[0].normalize(), 30),))
    assert list(out.iloc[:6]) == [2, 3, 4, 5, 6, 7] and out.iloc[6:].isna().all()


def test_screen_power_needs_one_index():
    idx = pd.date_range(pd.Timestamp("2026-05-01", tz=TZ), periods=8, freq="15min")
    s = pd.Series(1.0, index=idx)
    with pytest.raises(ValueError, match="need the same index"):
        screen_power(s, s.iloc[1:], s, 1.0)


def test_real_logger_on_daylight_saving_time_is_found():
    """PVDAQ system 50 (pvanalytics' data): every timestamp says -07:00, but in 2012 the
    logger ran on daylight saving time from 11 March to 3 November (US rules: the second
    Sunday of March, the first Sunday of November)."""
    system, w, m, _ = load_pv_dataset("pvdaq-50")
    year = m[m.index < pd.Timestamp("2013-01-01", tz=system.tz)]
    fc = forecast_pv(PVModel(system, "erbs"), year.index, w).frame
    q = screen_power(year, fc["p50_kw"], fc["clear_kw"], 3.5, fix_shifts=True)
    assert [str(s) for s in q.shifts] == ["2012-03-11..2012-11-03: clock 60 min late"]
