"""The year-on-year backtest on real measured data (PVDAQ system 50: 2012 calibration, 2013
test), the numbers docs/pv-forecast.md reports, targets met and not met alike."""

from __future__ import annotations

import pytest

from forecasts.backtest import pv_backtest
from forecasts.pv_forecast import PVModel
from vpp.pv_inputs import load_pv_dataset


@pytest.fixture(scope="module")
def result():
    system, w, m, meta = load_pv_dataset("pvdaq-50")
    return pv_backtest(PVModel(system), w, m, split=meta["test_start"], end=meta["test_end"],
                       fix_shifts=meta["fix_shifts"])


def test_a_full_test_year_after_a_calibration_year(result):
    r = result
    assert r.split.strftime("%Y-%m-%d") == "2013-01-01"
    # the last row, stamped 23:45 at its end, is the interval starting 23:30
    assert r.measured_kw.index[-1].strftime("%Y-%m-%d %H:%M") == "2013-12-31 23:30"
    assert r.chain.days == 327 and r.calibration.after.days == 329
    # both years: the logger's daylight saving time found and corrected
    assert [str(s) for s in r.calibration.quality.shifts] == [
        "2012-03-11..2012-11-03: clock 60 min late"]
    assert [str(s) for s in r.test_quality.shifts] == [
        "2013-03-09..2013-11-02: clock 60 min late"]


def test_calibration_has_no_energy_bias_where_least_squares_had_6_percent(result):
    assert abs(result.calibration.after.daily_bias) < 0.02
    assert result.baseline.after.daily_bias < -0.05  # the plain fit on the data as they come


def test_targets(result):
    """Daily-energy nMAE: 8.11 % against the plain baseline's 9.60 %, a lead of 15.5 % (target
    >= 10 %). 15-minute nRMSE: 12.22 % against 12.08 %, the chain 1.2 % *behind* (target: 15 %
    ahead - not met; with satellite weather at the input the 15-minute error is the weather's).
    P10-P90 coverage 78.3 % (target 78-82 %)."""
    r = result
    assert r.chain.daily_nmae == pytest.approx(0.0811, abs=0.001)
    assert r.plain.daily_nmae == pytest.approx(0.0960, abs=0.001)
    assert 1 - r.chain.daily_nmae / r.plain.daily_nmae >= 0.10
    assert r.chain.nrmse == pytest.approx(0.1222, abs=0.001)
    assert r.plain.nrmse == pytest.approx(0.1208, abs=0.001)
    assert 0.78 <= r.band_coverage <= 0.82


def test_the_forecast_is_scored_apart_from_the_model_chain(result):
    """Day-ahead persistence of the satellite clear-sky index: 23.6 % nRMSE and 29.2 % daily
    nMAE, twice the model chain's errors; its own bands hold 78.9 %."""
    r = result
    assert r.forecast_chain.nrmse == pytest.approx(0.236, abs=0.002)
    assert r.forecast_chain.daily_nmae == pytest.approx(0.292, abs=0.002)
    assert 0.78 <= r.forecast_coverage <= 0.82
    assert r.forecast_chain.nrmse > 1.8 * r.chain.nrmse
