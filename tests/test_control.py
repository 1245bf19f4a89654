"""The closed loop (vpp.control, vpp.closed_loop): the nowcast by hand, and honesty - a
controller decides on what was measured before its decision time, and a test catches one
that peeks."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from forecasts.synthetic import load_error_model
from vpp.catalog import default_catalog
from vpp.closed_loop import ClosedLoop
from vpp.control import ErrorStats, History, PeekError, nowcast
from vpp.options import SimulationOptions
from vpp.problem import storage_spec
from vpp.realtime import BatteryState
from vpp.simulation import _closed_loop, site_series
from vpp.timebase import PER_DAY


def test_history_refuses_the_future():
    h = History(np.arange(10.0), np.arange(10.0) * 2)
    h.now = 4
    load, pv = h.measured(0)
    assert load.tolist() == [0.0, 1.0, 2.0, 3.0] and pv.tolist() == [0.0, 2.0, 4.0, 6.0]
    assert h.measured(2, 4)[0].tolist() == [2.0, 3.0]
    with pytest.raises(PeekError, match="interval 5 asked for at interval 4"):
        h.measured(0, 5)


def test_nowcast_by_hand():
    """Eight measured intervals 10 % above the forecast, prior weight 8 intervals:
    bias = 8/16 * 0.10 = 0.05, its variance 0.04^2 * 8/16 = 0.0008, last error 0.10.
    Lead 0 today: error 0.05 + 0.05 * 0.9 = 0.095 -> 109.5 kW on a 100 kW forecast;
    sigma = 109.5 * sqrt(0.05^2 * (1 - 0.81) + 0.0008) = 109.5 * 0.035707 = 3.90991 kW.
    Lead 0 tomorrow (no bias): 0.05 * 0.9 = 0.045 -> 104.5 kW.
    PV: clear-sky-index errors of -0.2 on 8 intervals, bias -0.1 with variance
    0.1^2 * 0.5 = 0.005, lead 1: -0.1 - 0.1 * 0.95^2 = -0.19025 -> 50 - 0.19025 * 100 kW."""
    stats = ErrorStats(load_daily_sigma=0.04, load_intraday_sigma=0.05, load_persistence=0.9,
                       pv_daily_sigma=0.10, pv_intraday_sigma=0.08, pv_persistence=0.95,
                       prior_intervals=8.0)
    now = nowcast(stats, np.array([0, 1, 0]), np.array([True, True, False]),
                  np.full(3, 100.0), np.full(3, 50.0), np.full(3, 100.0),
                  np.full(8, 0.10), np.full(8, -0.2))
    assert now.load_kw[0] == pytest.approx(109.5)
    assert now.load_sigma_kw[0] == pytest.approx(109.5 * np.sqrt(0.0025 * 0.19 + 0.0008))
    assert now.load_kw[2] == pytest.approx(104.5)
    assert now.pv_kw[1] == pytest.approx(50.0 - 19.025)
    assert now.pv_sigma_kw[1] == pytest.approx(
        100.0 * np.sqrt(0.08 ** 2 * (1 - 0.95 ** 4) + 0.005))
    # nothing measured yet: the day-ahead forecast, the full daily uncertainty
    fresh = nowcast(stats, np.array([0]), np.array([True]), np.array([100.0]),
                    np.array([0.0]), np.array([0.0]), np.array([]), np.array([]))
    assert fresh.load_kw[0] == pytest.approx(100.0)
    assert fresh.load_sigma_kw[0] == pytest.approx(100.0 * np.sqrt(0.0025 * 0.19 + 0.0016))


# --------------------------------------------------------------------------- peeking

CUT = 52  # 13:00: decisions before it must not depend on anything measured from it on


@pytest.fixture(scope="module")
def day_inputs():
    cat = default_catalog()
    site = cat.fleet.site("CZ-MG-01")
    opts = SimulationOptions(start=dt.date(2025, 7, 1), days=1, seed=3, replan_minutes=15)
    errors = load_error_model()
    return cat, site, opts, errors, site_series(cat, site, opts, errors)


def _operate(cls: type[ClosedLoop], cat, site, opts, errors, ser) -> dict[str, np.ndarray]:
    loop = _closed_loop(cat, site, ser, opts, errors)
    loop.__class__ = cls
    storage = storage_spec(site)
    state = BatteryState(storage.soc_initial_kwh)
    real, _, stats = loop.operate_day(0, storage, state, 0.0, np.zeros(PER_DAY), fresh=True)
    assert stats.replans >= PER_DAY  # every 15 minutes
    return {"import": real.grid_import_kw, "charge": real.charge_kw,
            "discharge": real.discharge_kw, "soc": real.soc_kwh}


def _future_changed(ser):
    """The same series with every actual from ``CUT`` on changed (load +30 %, PV -50 %)."""
    load, pv = ser.load_actual_kw.copy(), ser.pv_actual_kw.copy()
    load[CUT:] *= 1.3
    pv[CUT:] *= 0.5
    return dataclasses.replace(ser, load_actual_kw=load, pv_actual_kw=pv)


def _decided_alike(cls, day_inputs) -> bool:
    """Whether ``cls`` operates the intervals before ``CUT`` identically when the actuals
    from ``CUT`` on change."""
    cat, site, opts, errors, ser = day_inputs
    a = _operate(cls, cat, site, opts, errors, ser)
    b = _operate(cls, cat, site, opts, errors, _future_changed(ser))
    same_before = all(np.array_equal(a[k][:CUT], b[k][:CUT]) for k in a)
    assert not all(np.array_equal(a[k], b[k]) for k in a), "the change must matter later"
    return same_before


class _PeekingLoop(ClosedLoop):
    """A controller that cheats: it plans on the actual load of the next hour, read straight
    from the series instead of through the history."""

    def _replan(self, ctl, pos, day_start, state, month_peak_kw, flex_today, budget=None):
        honest = self.ser
        forecast = honest.load_forecast_kw.copy()
        forecast[pos:pos + 4] = honest.load_actual_kw[pos:pos + 4]
        self.ser = dataclasses.replace(honest, load_forecast_kw=forecast)
        try:
            return super()._replan(ctl, pos, day_start, state, month_peak_kw, flex_today,
                                   budget)
        finally:
            self.ser = honest


class _AskingLoop(ClosedLoop):
    """A controller that asks the history for the interval it is deciding."""

    def _replan(self, ctl, pos, day_start, state, month_peak_kw, flex_today, budget=None):
        self.history.measured(day_start, pos + 1)
        return super()._replan(ctl, pos, day_start, state, month_peak_kw, flex_today, budget)


def test_the_controller_decides_on_the_past_only(day_inputs):
    """The shipped controller re-plans every 15 minutes; changing the actual load and PV from
    13:00 on leaves every decision and flow before 13:00 bit for bit the same."""
    assert _decided_alike(ClosedLoop, day_inputs)


def test_a_peeking_controller_is_caught(day_inputs):
    """The same check fails for a controller that reads the next hour's actual load, and
    the history refuses one that asks for the interval it is deciding."""
    assert not _decided_alike(_PeekingLoop, day_inputs)
    cat, site, opts, errors, ser = day_inputs
    with pytest.raises(PeekError):
        _operate(_AskingLoop, cat, site, opts, errors, ser)
