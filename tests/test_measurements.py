"""Measurements (vpp/measurements.py) and the measured state (vpp/state.py) on hand-made rows:
every validation error named, counters turned into powers by hand, a month-to-date peak and
its demand charge, energy cost and subsidy from four rows, a plan's initial state."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from vpp.measurements import (
    MAX_BATCH_ROWS,
    MeasurementError,
    field_limits,
    read_csv_rows,
    to_intervals,
    validate_batch,
)
from vpp.options import PlanOptions
from vpp.state import (
    apply_initial_state,
    battery_state,
    month_peak_warning,
    month_to_date,
    plan_initial_state,
    plan_vs_actual,
    planned_intervals,
    site_state,
)

CST = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 7, 15, 13, 0, tzinfo=CST)


@pytest.fixture(scope="module")
def site(catalog):
    # CZ-MG-01: 7,050 kVA transformer, battery 2,000 kW / 4,000 kWh, PV 2 x 1,830 kW AC,
    # billed 40 yuan/kW·month on demand; tariff 426号 (July: flat 0.65, valley 0.39)
    return catalog.fleet.site("CZ-MG-01")


def batch(site, rows, minutes=15, now=NOW, **kw):
    return validate_batch(site, rows, interval_minutes=minutes, now=now, **kw)


def errors_of(site, rows, minutes=15, now=NOW, **kw):
    with pytest.raises(MeasurementError) as info:
        batch(site, rows, minutes, now, **kw)
    return info.value.errors


# --------------------------------------------------------------------------- validation


def test_limits_come_from_the_site(site):
    lim = field_limits(site)
    assert lim["grid_import_kw"].hi == pytest.approx(7050 * 1.02)
    assert lim["pv_kw"].hi == pytest.approx(3660 * 1.02)
    assert (lim["battery_kw"].lo, lim["battery_kw"].hi) == pytest.approx((-2040.0, 2040.0))
    assert lim["soc_kwh"].hi == 4000.0


def test_every_bad_row_is_named_with_field_value_and_range(site):
    rows = [
        {"timestamp": "2026-07-15T10:00:00+08:00", "grid_import_kw": 7200.0},  # > 7191 kW
        {"timestamp": "2026-07-15T10:15:00+08:00", "soc_kwh": 4000.5},  # above capacity
        {"timestamp": "2026-07-15T10:30:00", "pv_kw": 10.0},  # naive
        {"timestamp": "2026-07-15T10:45:00+09:00", "pv_kw": 10.0},  # Tokyo, not Changzhou
        {"timestamp": "2026-07-15T10:50:00+08:00", "pv_kw": 10.0},  # off the grid
        {"timestamp": "2026-07-15T13:00:00+08:00", "load_kw": 10.0},  # interval not over
        {"timestamp": "2026-07-15T13:15:00+08:00", "soc_kwh": 10.0},  # future instant
        {"timestamp": "2026-07-15T02:00:00Z", "battery_kw": -2100.0},  # = 10:00 local: dup
        {"timestamp": "2026-07-15T11:00:00+08:00"},  # nothing measured
        {"timestamp": "2026-07-15T11:15:00+08:00", "pv_kw": "abc", "colour": 1},
    ]
    errs = errors_of(site, rows)
    got = {(e["row"], e["field"]) for e in errs}
    assert got == {(1, "grid_import_kw"), (2, "soc_kwh"), (3, "timestamp"), (4, "timestamp"),
                   (5, "timestamp"), (6, "timestamp"), (7, "timestamp"), (8, "battery_kw"),
                   (8, "timestamp"), (9, "row"), (10, "pv_kw"), (10, "colour")}
    by = {(e["row"], e["field"]): e for e in errs}
    assert by[(1, "grid_import_kw")]["allowed"].startswith("[0, 7191] kW (the transformer's")
    assert by[(2, "soc_kwh")]["allowed"].startswith("[0, 4000] kWh")
    assert "no UTC offset" in by[(3, "timestamp")]["message"]
    assert "+9 h is not Changzhou's" in by[(4, "timestamp")]["message"]
    assert "not on the 15-minute grid" in by[(5, "timestamp")]["message"]
    assert "not over yet" in by[(6, "timestamp")]["message"]
    assert "in the future" in by[(7, "timestamp")]["message"]
    assert "duplicate: row 1" in by[(8, "timestamp")]["message"]
    assert by[(8, "battery_kw")]["allowed"].startswith("[-2040, 2040] kW")


def test_batch_size_and_resolution_are_bounded(site):
    rows = [{"timestamp": "2026-07-15T10:00:00+08:00", "pv_kw": 1.0}] * (MAX_BATCH_ROWS + 1)
    (e,) = errors_of(site, rows)
    assert e["field"] == "rows" and e["allowed"] == f"at most {MAX_BATCH_ROWS} rows per batch"
    (e,) = errors_of(site, rows[:1], minutes=10)
    assert e["field"] == "interval_minutes" and e["allowed"] == "1, 3, 5, 15 minutes"


def test_a_json_batch_sends_numbers_a_file_may_send_text(site):
    rows = [{"timestamp": "2026-07-15T10:00:00+08:00", "grid_import_kw": "1e3",
             "pv_kw": True, "load_kw": [1]}]
    errs = errors_of(site, rows)
    assert [(e["field"], e["value"]) for e in errs] == [
        ("grid_import_kw", "1e3"), ("pv_kw", "True"), ("load_kw", "[1]")]
    assert errs[0]["message"] == "must be a number (a JSON number, not text)"
    # a CSV file's rows are text: the same value is a number there, an empty cell absent
    b = batch(site, [{"timestamp": "2026-07-15T10:00:00+08:00", "grid_import_kw": "1e3",
                      "pv_kw": ""}], text_numbers=True)
    assert b.frame["grid_import_kw"].iloc[0] == 1000.0 and np.isnan(b.frame["pv_kw"].iloc[0])


def test_counters_never_run_backwards_nor_jump(site):
    rows = [{"timestamp": f"2026-07-15T10:{m:02d}:00+08:00", "import_counter_kwh": v}
            for m, v in ((0, 100.0), (15, 90.0), (30, 2000.0))]
    errs = errors_of(site, rows)
    assert [(e["row"], e["field"]) for e in errs] == [(2, "import_counter_kwh"),
                                                      (3, "import_counter_kwh")]
    assert "runs backwards: 90 kWh after 100 kWh" in errs[0]["message"]
    # 90 -> 2000 kWh in 15 min is 7,640 kW on average: more than the transformer carries
    assert "jumps 1910 kWh in 15 min" in errs[1]["message"]
    # against the stored reading before the batch
    before = (dt.datetime(2026, 7, 15, 1, 45, tzinfo=dt.UTC), 500.0)
    errs = errors_of(site, rows[:1], stored_counters={"import_counter_kwh": (before, None)})
    assert "runs backwards: 100 kWh after 500 kWh" in errs[0]["message"]
    assert "the stored reading" in errs[0]["message"]
    # against a stored reading after the batch: that one is named, at its own time, and a
    # meter register keeps all its digits
    after = (dt.datetime(2026, 7, 15, 2, 30, tzinfo=dt.UTC), 1_000_000.0)
    late = [{"timestamp": "2026-07-15T10:15:00+08:00", "import_counter_kwh": 1_031_650.0}]
    (e,) = errors_of(site, late, stored_counters={"import_counter_kwh": (None, after)})
    assert e["row"] == 1 and e["message"] == (
        "counter runs backwards: 1031650 kWh here, but the stored reading at the later "
        "2026-07-15T10:30:00+08:00 is 1000000 kWh")


def test_gaps_are_reported_not_rejected(site):
    rows = [{"timestamp": f"2026-07-15T10:{m:02d}:00+08:00", "pv_kw": 5.0} for m in (0, 5, 25)]
    b = batch(site, rows, minutes=5)
    assert b.gaps == [{"start": "2026-07-15T10:10:00+08:00", "end": "2026-07-15T10:25:00+08:00",
                       "missing_intervals": 3}]
    assert b.summary()["missing_intervals"] == 3


def test_a_gap_after_stored_rows_counts_from_their_end_whatever_their_length(site):
    """5-minute rows from 10:00 after a stored 15-minute row at 09:45 (it ends at 10:00):
    no gap (it reported 2 missing 5-minute steps 09:50 .. 10:00); after a stored row
    ending at 09:50, the 09:50 and 09:55 steps are missing."""
    rows = [{"timestamp": f"2026-07-15T10:{m:02d}:00+08:00", "pv_kw": 5.0} for m in (0, 5)]
    end = dt.datetime(2026, 7, 15, 2, 0, tzinfo=dt.UTC)  # 10:00 local
    assert batch(site, rows, minutes=5, stored_until=end).gaps == []
    b = batch(site, rows, minutes=5, stored_until=end - dt.timedelta(minutes=10))
    assert b.gaps == [{"start": "2026-07-15T09:50:00+08:00",
                       "end": "2026-07-15T10:00:00+08:00", "missing_intervals": 2}]


def test_csv_rows_and_header_problems(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("timestamp,grid_import_kw,soc_kwh\n2026-07-15T10:00:00+08:00,100,\n", "utf-8")
    assert read_csv_rows(p) == [{"timestamp": "2026-07-15T10:00:00+08:00",
                                 "grid_import_kw": "100", "soc_kwh": ""}]
    p.write_text("time,power\n", "utf-8")
    with pytest.raises(ValueError, match=r"(?s)no 'timestamp' column.*unknown column\(s\)"):
        read_csv_rows(p)


# --------------------------------------------------------------------------- intervals


def test_counters_become_15_minute_powers_by_hand(site):
    """5-minute import counter readings 10:00..10:30: 1000, 1100, 1150, 1300, 1300, 1360,
    1420 kWh. 10:00-10:15: (1300 - 1000) kWh / 0.25 h = 1200 kW; 10:15-10:30: (1420 - 1300)
    / 0.25 = 480 kW. A 5-minute power row inside the first interval loses to the counter;
    10:30-10:45 has no closing reading: its power rows (600 and 900 kW, 5 minutes each)
    cover 10 of its 15 minutes (coverage 2/3), so its 15-minute average - what billing reads
    - is unknown (it was taken as their 750 kW: 187.5 kWh where 125 were measured); only a
    control step's running interval takes the partial average."""
    counter = [1000, 1100, 1150, 1300, 1300, 1360, 1420]
    rows = [{"timestamp": f"2026-07-15T10:{5 * i:02d}:00+08:00", "import_counter_kwh": v}
            for i, v in enumerate(counter)]
    rows[1]["grid_import_kw"] = 5000.0
    rows.append({"timestamp": "2026-07-15T10:35:00+08:00", "grid_import_kw": 600.0})
    rows.append({"timestamp": "2026-07-15T10:40:00+08:00", "grid_import_kw": 900.0})
    b = batch(site, rows, minutes=5)
    start = pd.Timestamp("2026-07-15T10:00:00+08:00")
    iv = to_intervals(b.frame, start, start + pd.Timedelta(hours=1))
    np.testing.assert_allclose(iv["grid_import_kw"].to_numpy()[:2], [1200.0, 480.0])
    assert np.isnan(iv["grid_import_kw"].iloc[2]) and np.isnan(iv["grid_import_kw"].iloc[3])
    np.testing.assert_allclose(iv["import_coverage"].to_numpy(), [1.0, 1.0, 2 / 3, 0.0])
    running = to_intervals(b.frame, start, start + pd.Timedelta(hours=1), partial=True)
    assert running["grid_import_kw"].iloc[2] == 750.0


def test_soc_at_interval_end_and_load_from_the_balance(site):
    rows = [{"timestamp": "2026-07-15T10:00:00+08:00", "grid_import_kw": 1000.0,
             "grid_export_kw": 0.0, "pv_kw": 300.0, "battery_kw": 200.0, "soc_kwh": 2000.0},
            {"timestamp": "2026-07-15T10:15:00+08:00", "soc_kwh": 1950.0, "load_kw": 700.0}]
    b = batch(site, rows)
    start = pd.Timestamp("2026-07-15T10:00:00+08:00")
    iv = to_intervals(b.frame, start, start + pd.Timedelta(minutes=30))
    # load = import - export + pv + battery = 1000 - 0 + 300 + 200
    assert iv["load_kw"].iloc[0] == 1500.0 and iv["load_derived"].iloc[0]
    assert iv["load_kw"].iloc[1] == 700.0 and not iv["load_derived"].iloc[1]
    # the reading at 10:15 is the SOC at the end of 10:00-10:15
    assert iv["soc_kwh"].iloc[0] == 1950.0 and np.isnan(iv["soc_kwh"].iloc[1])


# --------------------------------------------------------------------------- the state

FOUR = [("10:00", 1000.0, 100.0), ("10:15", 3000.0, 100.0), ("10:30", 2000.0, 100.0),
        ("12:00", 1500.0, 200.0)]


def four_rows(site):
    rows = [{"timestamp": f"2026-07-15T{t}:00+08:00", "grid_import_kw": imp,
             "battery_kw": bat, "soc_kwh": 2000.0 - 25.0 * i}
            for i, (t, imp, bat) in enumerate(FOUR)]
    return batch(site, rows).frame


def test_month_to_date_peak_demand_charge_cost_and_subsidy_by_hand(catalog, site):
    """Four rows: imports 1000, 3000, 2000 kW in flat 10:00-10:45 (0.65 yuan/kWh) and 1500 kW
    in the midday valley 12:00 (0.39); discharge 100 kW in the flat intervals, 200 in the
    valley one. Peak 3000 kW -> 3000 x 40 = 120,000 yuan of demand charge; energy cost
    (1000 + 3000 + 2000) x 0.25 x 0.65 + 1500 x 0.25 x 0.39 = 975 + 146.25 = 1121.25 yuan;
    discharge 3 x 25 + 50 = 125 kWh, of which the 75 kWh in flat hours earn 0.3 yuan/kWh
    under the shipped peak_flat rule: 22.5 yuan."""
    s = site_state(catalog, "CZ-MG-01", four_rows(site), NOW)
    assert s.month_peak_kw == 3000.0 and s.month_peak_at == "2026-07-15T10:15:00+08:00"
    assert s.demand_charge_yuan == pytest.approx(120_000.0)
    assert s.energy_cost_yuan == pytest.approx(1121.25)
    assert s.import_kwh == pytest.approx(1875.0)
    assert s.discharge_kwh == pytest.approx(125.0)
    assert s.subsidy_rule == "peak_flat" and s.subsidy_yuan == pytest.approx(22.5)
    assert s.soc_kwh == 1925.0 and s.soc_frac == pytest.approx(1925 / 4000)
    assert s.soc_measured_at == "2026-07-15T12:00:00+08:00"
    # freshness: the 12:00 row averages to 12:15; at 13:00 that is 45 minutes old
    assert s.data_until == "2026-07-15T12:15:00+08:00" and s.age_s == 2700.0
    # 14 days and 13 hours of intervals so far, 4 measured; gaps listed as runs
    assert s.intervals_so_far == 14 * 96 + 52 and s.intervals_measured == 4
    assert s.gap_intervals == s.intervals_so_far - 4
    assert [g["intervals"] for g in s.gaps] == [14 * 96 + 40, 5, 3]
    d = s.to_dict()
    assert d["demand_charge_yuan"] == 120000.0 and isinstance(d["gaps"], list)


def test_the_interval_in_progress_and_the_future_are_not_counted(catalog, site):
    s = site_state(catalog, "CZ-MG-01", four_rows(site), dt.datetime(2026, 7, 15, 10, 20,
                                                                       tzinfo=CST))
    # at 10:20 only 10:00-10:15 is over: 10:15's 3000 kW is not in yet
    assert s.month_peak_kw == 1000.0 and s.demand_charge_yuan == pytest.approx(40_000.0)
    s = site_state(catalog, "CZ-MG-01", four_rows(site).iloc[:0], NOW)
    assert not s.measured and s.month_peak_kw == 0.0 and s.soc_kwh is None


def test_a_new_month_starts_from_no_peak(catalog, site):
    s = site_state(catalog, "CZ-MG-01", four_rows(site), dt.datetime(2026, 8, 1, 0, 30,
                                                                       tzinfo=CST))
    assert s.month == "2026-08" and s.month_peak_kw == 0.0 and s.energy_cost_yuan == 0.0
    assert s.soc_kwh == 1925.0  # the latest reading, whenever it was


def test_a_month_named_by_its_first_day_is_counted_to_its_end(catalog, site):
    """The four rows and, at the month's very end, 07-31 23:45 importing 4000 kW (battery
    at rest, SOC 1800 kWh), then 5000 kW on 08-01 00:00 and 00:30. July counted at 08-01
    00:00 (the end of 07-31) and at 08-02: all 31 x 96 = 2976 intervals, 5 measured; peak
    4000 kW at 23:45 -> 160,000 yuan; import 1875 + 1000 = 2875 kWh; discharge and subsidy
    those of the four rows (125 kWh, 22.5 yuan); August's rows are not July's. Without
    ``first`` the month is the one containing the instant: at 08-01 00:00, August."""
    extra = [{"timestamp": "2026-07-31T23:45:00+08:00", "grid_import_kw": 4000.0,
              "battery_kw": 0.0, "soc_kwh": 1800.0},
             {"timestamp": "2026-08-01T00:00:00+08:00", "grid_import_kw": 5000.0},
             {"timestamp": "2026-08-01T00:30:00+08:00", "grid_import_kw": 5000.0}]
    later = dt.datetime(2026, 8, 2, tzinfo=CST)
    rows = pd.concat([four_rows(site), batch(site, extra, now=later).frame]).sort_index()
    july = pd.Timestamp("2026-07-01T00:00:00+08:00")
    end = dt.datetime(2026, 8, 1, tzinfo=CST)
    for now in (end, later):
        s = site_state(catalog, "CZ-MG-01", rows, now, first=july)
        assert s.month == "2026-07" and s.month_peak_kw == 4000.0
        assert s.month_peak_at == "2026-07-31T23:45:00+08:00"
        assert s.demand_charge_yuan == pytest.approx(160_000.0)
        assert s.import_kwh == pytest.approx(2875.0)
        assert s.discharge_kwh == pytest.approx(125.0) and s.subsidy_yuan == pytest.approx(22.5)
        assert s.intervals_so_far == 31 * 96 and s.intervals_measured == 5
        assert s.soc_kwh == 1800.0
    assert month_to_date(catalog, "CZ-MG-01", rows, end, july).month_peak_kw == 4000.0
    s = site_state(catalog, "CZ-MG-01", rows, end)  # the API's instant: August begins
    assert s.month == "2026-08" and s.month_peak_kw == 0.0 and s.intervals_so_far == 0


def test_plan_initial_state_and_the_options_that_win(site):
    rows = four_rows(site)
    start = pd.Timestamp("2026-07-15T00:00:00+08:00")
    st = plan_initial_state(site, rows, start, NOW)
    assert st.month_peak_kw == 3000.0 and "measured" in st.month_peak_source
    assert st.soc_kwh is None  # nothing measured within an hour before 00:00
    st = plan_initial_state(site, rows, pd.Timestamp("2026-07-15T12:15:00+08:00"), NOW)
    assert st.soc_kwh == 1925.0
    # a plan of the first of a month made before it: nothing metered yet (the default 0)
    first = plan_initial_state(site, rows, pd.Timestamp("2026-08-01T00:00:00+08:00"), NOW)
    assert first.month_peak_kw is None and "no import measured" in first.month_peak_source
    # made later in the month (or later that day): the peak metered since is billed anyway
    first = plan_initial_state(site, rows, pd.Timestamp("2026-07-01T00:00:00+08:00"), NOW)
    assert first.month_peak_kw == 3000.0 and "measured" in first.month_peak_source
    assert plan_initial_state(site, rows.iloc[:0], start, NOW) is None
    opts, rec = apply_initial_state(PlanOptions(), set(), st, site, start.date())
    assert opts.month_peak_kw == 3000.0 and opts.soc_initial_frac == pytest.approx(1925 / 4000)
    assert rec["soc_initial_kwh"] == pytest.approx(1925.0)
    assert rec["month_peak_source"].startswith("stored measurements")
    given = PlanOptions(month_peak_kw=4200.0, soc_initial_frac=0.3)
    opts, rec = apply_initial_state(given, {"month_peak_kw", "soc_initial_frac"}, st, site,
                                    start.date())
    assert (opts.month_peak_kw, opts.soc_initial_frac) == (4200.0, 0.3)
    assert rec["month_peak_source"] == "option month_peak_kw"
    low = dataclass_replace(st, soc_kwh=10.0)
    opts, rec = apply_initial_state(PlanOptions(), set(), low, site, start.date())
    assert opts.soc_initial_frac == 0.05 and "taken to the SOC window" in rec[
        "soc_initial_source"]


def dataclass_replace(obj, **kw):
    import dataclasses

    return dataclasses.replace(obj, **kw)


def test_the_forgotten_month_peak_warning(site):
    w = month_peak_warning(dt.date(2026, 7, 15), 0.0, site, 40.0)
    assert w.startswith("WARNING") and "208,000 yuan" in w  # 40 yuan/kW x 5,200 kW peak
    assert month_peak_warning(dt.date(2026, 7, 1), 0.0, site, 40.0) is None
    assert month_peak_warning(dt.date(2026, 7, 15), 10.0, site, 40.0) is None
    assert month_peak_warning(dt.date(2026, 7, 15), 0.0, site, 0.0) is None  # capacity


def test_battery_state_from_metered_power(site):
    """Charging 10:00-11:00, resting 11:00-11:30, discharging 11:30-12:00 at 400 kW: at
    12:00 the side is discharge (0), taken at 11:30 (0.5 h held), last moved in the interval
    ending at 12:00 (0 h rest), 200 kWh discharged today."""
    idx = pd.date_range("2026-07-15T10:00:00+08:00", periods=8, freq="15min")
    iv = pd.DataFrame({"battery_kw": [-500.0] * 4 + [0.0] * 2 + [400.0] * 2}, index=idx)
    st = battery_state(site, iv, 2000.0, pd.Timestamp("2026-07-15T12:00:00+08:00"))
    assert (st.side, st.held_h, st.rested_h) == (0, 0.5, 0.0)
    assert st.discharged_today_kwh == pytest.approx(200.0)
    only = battery_state(site, iv.iloc[:4], 2000.0, pd.Timestamp("2026-07-15T11:30:00+08:00"))
    assert only.side == 1 and math.isinf(only.held_h) and only.rested_h == 0.5


def test_planned_intervals_take_the_latest_decision():
    idx = pd.date_range("2026-07-15T10:00:00+08:00", periods=3, freq="15min")

    def step(start, values, decided):
        stamps = pd.date_range(start, periods=len(values), freq="15min")
        return {"start": stamps[0].isoformat(), "decided_at": decided,
                "timestamps": [t.isoformat() for t in stamps], "setpoint_kw": values,
                "grid_import_kw": [v + 1000 for v in values], "soc_kwh": [2000.0] * len(values)}

    a = step("2026-07-15T09:45:00+08:00", [1.0, 2.0, 3.0, 4.0], "2026-07-15T09:46:00+08:00")
    b = step("2026-07-15T10:15:00+08:00", [30.0, 40.0], "2026-07-15T10:16:00+08:00")
    out = planned_intervals(idx, [b, a], None)
    assert out["battery_kw"].tolist() == [2.0, 30.0, 40.0]
    assert out["source"].tolist() == ["setpoints"] * 3


def test_plan_vs_actual_with_pv_and_money_by_hand(catalog, site):
    """A day-ahead plan of 2000 kW import, 1000 kW PV and 600 kW discharge at 16:00 (0
    elsewhere); a control step re-plans 10:00 to 2800 kW import and 350 kW discharge (no
    PV: the plan's stays). Metered: 10:00 import 3000, battery 300, PV 800 kW; 16:00 import
    2000, battery 800, PV 1400 kW. Over these two intervals:

    * import (2800 + 2000) x 0.25 = 1200 kWh planned, (3000 + 2000) x 0.25 = 1250 metered;
    * energy cost 2800 x 0.25 x 0.65 + 2000 x 0.25 x 0.97 = 455 + 485 = 940 yuan planned,
      3000 x 0.25 x 0.65 + 485 = 972.5 yuan metered;
    * discharge (350 + 600) x 0.25 = 237.5 kWh planned, (300 + 800) x 0.25 = 275 metered,
      all in flat (10:00) and peak (16:00) hours: subsidy 0.3 x 237.5 = 71.25 yuan and
      0.3 x 275 = 82.5 yuan;
    * PV (1000 + 1000) x 0.25 = 500 kWh planned, (800 + 1400) x 0.25 = 550 metered."""
    from vpp.timebase import horizon

    day = dt.date(2026, 7, 15)
    idx = horizon(day)
    n = len(idx)
    dis = [0.0] * n
    dis[64] = 600.0  # 16:00
    plan = {"inputs": {"timestamps": [t.isoformat() for t in idx]},
            "intervals": {"grid_import_kw": [2000.0] * n, "discharge_kw": dis,
                          "charge_kw": [0.0] * n, "soc_kwh": [2000.0] * n,
                          "pv_used_kw": [1000.0] * n}}
    step = {"start": "2026-07-15T10:00:00+08:00", "decided_at": "2026-07-15T09:58:00+08:00",
            "timestamps": ["2026-07-15T10:00:00+08:00"], "setpoint_kw": [350.0],
            "grid_import_kw": [2800.0], "soc_kwh": [1900.0]}
    rows = [{"timestamp": f"2026-07-15T{t}:00+08:00", "grid_import_kw": imp,
             "battery_kw": bat, "pv_kw": pv}
            for t, imp, bat, pv in (("10:00", 3000.0, 300.0, 800.0),
                                    ("16:00", 2000.0, 800.0, 1400.0))]
    frame = batch(site, rows, now=dt.datetime(2026, 7, 16, tzinfo=CST)).frame
    out = plan_vs_actual(site, day, frame, [step], plan, catalog)
    t = out["totals"]
    assert (t["import_intervals_compared"], t["battery_intervals_compared"],
            t["pv_intervals_compared"]) == (2, 2, 2)
    assert (t["planned_import_kwh"], t["actual_import_kwh"]) == (1200.0, 1250.0)
    assert (t["planned_peak_kw"], t["actual_peak_kw"]) == (2800.0, 3000.0)
    assert t["planned_energy_cost_yuan"] == pytest.approx(940.0)
    assert t["actual_energy_cost_yuan"] == pytest.approx(972.5)
    assert (t["planned_discharge_kwh"], t["actual_discharge_kwh"]) == (237.5, 275.0)
    assert t["planned_subsidy_yuan"] == pytest.approx(71.25)
    assert t["actual_subsidy_yuan"] == pytest.approx(82.5)
    assert (t["planned_pv_kwh"], t["actual_pv_kwh"]) == (500.0, 550.0)
    assert out["planned"]["source"][40] == "setpoints" and out["planned"]["pv_kw"][40] == 1000.0
    assert out["planned"]["source"][64] == "plan"
    assert "planned_energy_cost_yuan" not in plan_vs_actual(site, day, frame, [step],
                                                            plan)["totals"]  # no catalog


def test_timestamps_outside_the_supported_dates_are_refused(site):
    (e,) = errors_of(site, [{"timestamp": "0001-01-01T00:00:00+08:00", "pv_kw": 1.0}])
    assert e["field"] == "timestamp" and "supported dates 2000-01-01 to 2099-12-31" in e[
        "message"]


def test_an_integer_beyond_any_float_is_an_error_not_a_crash(site):
    (e,) = errors_of(site, [{"timestamp": "2026-07-15T10:00:00+08:00", "pv_kw": 10**400}])
    assert (e["field"], e["message"]) == ("pv_kw", "must be a finite number")
