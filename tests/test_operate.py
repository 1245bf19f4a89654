"""A live control step and what is measured close to its decision time: the SOC carried
from its reading to the step's start, and the running interval's measured part guarding the
set-point to apply now. Numbers by hand; CZ-MG-05: 2,500 kW / 5,000 kWh, discharge
efficiency 0.93 (site file), anti-backflow."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from vpp.catalog import default_catalog
from vpp.measurements import validate_batch
from vpp.operate import (
    Operator,
    RunningInterval,
    guard_running_interval,
    running_interval,
    soc_at,
)
from vpp.problem import storage_spec
from vpp.realtime import BatteryState

CST = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(scope="module")
def site():
    return default_catalog().fleet.site("CZ-MG-05")


def rows(site, stamps_rows, minutes, now):
    batch = [{"timestamp": t, **r} for t, r in stamps_rows]
    return validate_batch(site, batch, interval_minutes=minutes, now=now).frame


def test_the_soc_is_carried_from_its_reading_to_the_steps_start(site):
    """SOC 1,773.87 kWh read at 09:45, the battery discharging 500 kW over 09:45-10:00:
    at 10:00 it holds 1,773.87 - 500 x 0.25 / 0.93 = 1,639.46 kWh (the step used the
    09:45 reading as the 10:00 level, 134 kWh too high). A reading at or after the start is
    taken as it is; an unmetered row moves nothing."""
    s = storage_spec(site)
    assert s.eta_discharge == pytest.approx(0.93)
    now = dt.datetime(2026, 12, 1, 10, 5, tzinfo=CST)
    frame = rows(site, [("2026-12-01T09:45:00+08:00",
                         {"battery_kw": 500.0, "soc_kwh": 1773.87, "grid_import_kw": 5000.0})],
                 15, now)
    start = pd.Timestamp("2026-12-01T10:00:00+08:00")
    soc, hours = soc_at(s, 1773.87, pd.Timestamp("2026-12-01T09:45:00+08:00"), start, frame)
    assert soc == pytest.approx(1773.87 - 125.0 / 0.93) and hours == 0.25
    assert soc_at(s, 1773.87, start, start, frame) == (1773.87, 0.0)
    idle = frame.assign(battery_kw=float("nan"))
    assert soc_at(s, 1773.87, pd.Timestamp("2026-12-01T09:45:00+08:00"), start, idle) == (
        1773.87, 0.0)


def test_the_running_intervals_measured_part_guards_the_setpoint_now(site):
    """Defended peak 7,000 kW; 5 of the 15 minutes measured at 8,500 kW import with the
    battery idle (net load 8,500 kW): the other 10 minutes may import
    (7,000 - 8,500 / 3) x 1.5 = 6,250 kW, so a planned 2,500 kW charge becomes a 2,250 kW
    discharge. Nothing measured, or a plan that already holds the peak: unchanged."""
    s = storage_spec(site, soc_initial_kwh=2500.0)
    state = BatteryState(2500.0)
    run = RunningInterval(1 / 3, 8500.0, 0.0, 0.0)
    b, why = guard_running_interval(s, state, -2500.0, run, 7000.0, 7920.0, 0.0)
    assert b == pytest.approx(2250.0) and "6,250 kW" in why and "5 of 15 min" in why
    assert state.soc_kwh == 2500.0  # the caller's state is not advanced
    assert guard_running_interval(s, BatteryState(2500.0), -2500.0, None, 7000.0, 7920.0,
                                  0.0) == (-2500.0, "")
    calm = RunningInterval(1 / 3, 4000.0, 0.0, 0.0)
    assert guard_running_interval(s, BatteryState(2500.0), -500.0, calm, 7000.0, 7920.0,
                                  0.0) == (-500.0, "")


def test_running_interval_weights_rows_by_their_minutes(site):
    """Rows at 13:45 (5 min, 8,800 kW) and 13:50 (5 min, 8,200 kW; battery -300 kW): 10 of
    15 minutes measured, mean import 8,500 kW, battery -150 kW; a 15-minute row at 13:45
    counts as the whole interval."""
    now = dt.datetime(2026, 12, 1, 13, 56, tzinfo=CST)
    frame = rows(site, [("2026-12-01T13:45:00+08:00", {"grid_import_kw": 8800.0,
                                                        "battery_kw": 0.0}),
                        ("2026-12-01T13:50:00+08:00", {"grid_import_kw": 8200.0,
                                                        "battery_kw": -300.0})], 5, now)
    start = pd.Timestamp("2026-12-01T13:45:00+08:00")
    run = running_interval(frame, start, pd.Timestamp(now))
    assert run.measured_frac == pytest.approx(2 / 3) and run.import_kw == pytest.approx(8500)
    assert run.battery_kw == pytest.approx(-150.0)
    whole = rows(site, [("2026-12-01T13:45:00+08:00", {"grid_import_kw": 8500.0,
                                                        "battery_kw": 0.0})], 15,
                 dt.datetime(2026, 12, 1, 14, 1, tzinfo=CST))
    assert running_interval(whole, start, pd.Timestamp(now)).measured_frac == 1.0
    assert running_interval(frame, start + pd.Timedelta(minutes=15), pd.Timestamp(now)) is None


def test_a_step_during_a_peak_overshoot_does_not_charge():
    """CZ-MG-05 on 2026-12-01: 15-minute rows from 00:00 to 13:30 at 5,000 kW import with
    the battery idle at 2,500 kW (month peak 5,000 kW), then 5 minutes at 13:45 measured at
    8,500 kW. The step at 13:50 must not charge in the running interval (it commanded
    -2,500 kW there, the interval's import at 8,500 kW): the set-point to apply now is a
    discharge, and a note says why."""
    cat = default_catalog()
    site = cat.fleet.site("CZ-MG-05")
    now = dt.datetime(2026, 12, 1, 13, 50, 11, tzinfo=CST)
    day = [(f"2026-12-01T{h:02d}:{m:02d}:00+08:00",
            {"grid_import_kw": 5000.0, "battery_kw": 0.0, "pv_kw": 0.0, "soc_kwh": 2500.0})
           for h in range(14) for m in (0, 15, 30, 45) if (h, m) < (13, 45)]
    frame = pd.concat([rows(site, day, 15, now),
                       rows(site, [("2026-12-01T13:45:00+08:00",
                                    {"grid_import_kw": 8500.0, "battery_kw": 0.0,
                                     "pv_kw": 0.0})], 5, now)]).sort_index()
    sp = Operator(cat).step("CZ-MG-05", frame, now)
    assert sp.start == "2026-12-01T13:45:00+08:00"
    assert sp.setpoint_kw[0] > 0.0, (sp.setpoint_kw[:3], sp.notes)
    assert any("running interval measured at 8,500 kW" in n for n in sp.notes), sp.notes
    # the interval's planned SOC follows the discharge (it showed the plan's charge)
    assert sp.soc_kwh[0] == pytest.approx(2500.0 - sp.setpoint_kw[0] * 0.25 / 0.93)
    assert sp.initial["age_s"] >= 0.0


def test_a_soc_carried_over_unmetered_battery_hours_says_so():
    """CZ-MG-05 on 2026-12-01: the SOC read at 06:00 (2,500 kWh, battery idle for that
    quarter hour), then import rows without battery power until 13:30. The step at 13:50
    starts from 2,500 kWh - the 7 h 30 min unmetered are taken as idle - and says so: read
    465 min before the step (13:45), battery power metered for 15 of them."""
    cat = default_catalog()
    site = cat.fleet.site("CZ-MG-05")
    now = dt.datetime(2026, 12, 1, 13, 50, 11, tzinfo=CST)
    day = [(f"2026-12-01T{h:02d}:{m:02d}:00+08:00", {"grid_import_kw": 5000.0, "pv_kw": 0.0})
           for h in range(14) for m in (0, 15, 30, 45) if (h, m) < (13, 45)]
    day[24] = (day[24][0], {**day[24][1], "battery_kw": 0.0, "soc_kwh": 2500.0})  # 06:00
    sp = Operator(cat).step("CZ-MG-05", rows(site, day, 15, now), now)
    assert sp.initial["soc_kwh"] == pytest.approx(2500.0)
    assert ("the SOC was read 465 min before this step and the battery power is metered for "
            "15 min of that: the rest is taken as idle (0 kW)") in sp.notes, sp.notes


def test_the_state_outside_the_window_and_export_at_an_anti_backflow_site(site):
    """CZ-MG-05 (anti-backflow; subsidy window 2024-10-01 to 2026-09-30) on 2026-12-01: a
    15-minute row exporting 200 kW is 50 kWh of export that earns nothing (it earned
    9.775 yuan at 0.391) and is reported as anti-backflow export; the subsidy rate shown is
    0 outside the window (it showed 0.3 while the ledger said 0); in September, 0.3."""
    from vpp.state import site_state

    cat = default_catalog()
    now = dt.datetime(2026, 12, 1, 14, 0, tzinfo=CST)
    frame = rows(site, [("2026-12-01T13:30:00+08:00",
                         {"grid_import_kw": 0.0, "grid_export_kw": 200.0, "battery_kw": 0.0})],
                 15, now)
    st = site_state(cat, "CZ-MG-05", frame, now)
    assert st.export_kwh == 50.0 and st.export_revenue_yuan == 0.0
    assert st.anti_backflow_export_kwh == 50.0
    assert not st.subsidy_in_window and st.subsidy_rate_yuan_per_kwh == 0.0
    sept = dt.datetime(2026, 9, 15, 12, 0, tzinfo=CST)
    st = site_state(cat, "CZ-MG-05", rows(site, [("2026-09-15T10:00:00+08:00",
                                                   {"grid_import_kw": 100.0})], 15, sept), sept)
    assert st.subsidy_in_window and st.subsidy_rate_yuan_per_kwh == 0.3
    assert st.anti_backflow_export_kwh == 0.0


def test_plan_vs_actual_leaves_the_interval_under_way_out(site):
    """At 13:36 the 13:30 interval has 5 of its 15 minutes (a 5-minute row at 6,000 kW):
    plan-vs-actual counted it as a whole interval at 6,000 kW (1,500 kWh) while the state
    did not; it is unmeasured, like in the state; 13:15 (complete) counts. After 13:45 it
    stays unmeasured while no more rows cover it (its 15-minute average is unknown: 6,000
    kW for 5 minutes is 500 kWh, not 1,500); with rows of 6,000, 6,000 and 3,000 kW for
    its three 5-minute parts it is 5,000 kW."""
    from vpp.state import plan_vs_actual

    at = dt.datetime(2026, 12, 1, 13, 36, tzinfo=CST)
    frame = pd.concat([
        rows(site, [("2026-12-01T13:15:00+08:00", {"grid_import_kw": 5000.0,
                                                    "battery_kw": 0.0})], 15, at),
        rows(site, [("2026-12-01T13:30:00+08:00", {"grid_import_kw": 6000.0,
                                                    "battery_kw": 0.0})], 5, at)])
    day = dt.date(2026, 12, 1)
    now = plan_vs_actual(site, day, frame, [], None, now=pd.Timestamp(at))
    later = plan_vs_actual(site, day, frame, [], None,
                           now=pd.Timestamp("2026-12-01T13:46:00+08:00"))
    i = 13 * 4 + 2  # 13:30
    assert now["actual"]["grid_import_kw"][i - 1] == 5000.0
    assert now["actual"]["grid_import_kw"][i] is None
    assert later["actual"]["grid_import_kw"][i] is None
    full = pd.concat([frame, rows(site, [
        ("2026-12-01T13:35:00+08:00", {"grid_import_kw": 6000.0, "battery_kw": 0.0}),
        ("2026-12-01T13:40:00+08:00", {"grid_import_kw": 3000.0, "battery_kw": 0.0})], 5,
        pd.Timestamp("2026-12-01T13:46:00+08:00"))])
    later = plan_vs_actual(site, day, full, [], None,
                           now=pd.Timestamp("2026-12-01T13:46:00+08:00"))
    assert later["actual"]["grid_import_kw"][i] == pytest.approx(5000.0)
