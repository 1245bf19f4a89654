"""Simulation: the persistent day model, a 3-day case by hand, subsidy windows, foresight,
executors and resuming."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from forecasts.synthetic import load_error_model
from models import PersistentDispatch, SolveOptions, solve_dispatch
from models.errors import InvalidInputError
from vpp.catalog import DEFAULT_POLICY, PACKAGE_DATA, Catalog, default_catalog
from vpp.options import PlanOptions, SimulationOptions, parse, with_policy
from vpp.planning import build_inputs
from vpp.simulation import (
    SiteSeries,
    check_simulation,
    period,
    simulate,
    simulate_site,
    site_series,
)
from vpp.sites import parse_fleet
from vpp.subsidy import PolicyBook, subsidy_rate_series

# --------------------------------------------------------------------------- persistent model


@pytest.mark.parametrize("site_id", ["CZ-MG-01", "CZ-MG-05", "CZ-MG-24"])
def test_persistent_model_agrees_with_a_fresh_build(site_id):
    """Four different days (dates, month peaks, SOC) solved by one persistent model agree
    with a fresh Pyomo build of each day within both certified gaps."""
    cat = default_catalog()
    site = cat.fleet.site(site_id)
    solver = None
    days = [(dt.date(2026, 7, 15), 0.0, 0.5), (dt.date(2026, 7, 16), 900.0, 0.3),
            (dt.date(2026, 11, 23), 2500.0, 0.9), (dt.date(2026, 3, 3), 400.0, 0.5)]
    for day, peak, soc in days:
        p = build_inputs(cat, site, day, PlanOptions(month_peak_kw=peak, soc_initial_frac=soc,
                                                     soc_terminal_min_frac=0.5)).problem
        solver = solver or PersistentDispatch(p, SolveOptions(mip_rel_gap=1e-3))
        got = solver.solve(p)
        ref = solve_dispatch(p, SolveOptions(mip_rel_gap=1e-3))
        tol = (got.optimality_gap + ref.optimality_gap) * max(abs(ref.objective_yuan), 1.0) + 1e-6
        assert abs(got.objective_yuan - ref.objective_yuan) <= tol, (day, got.method)
        assert got.optimality_gap <= 1e-3
        # the plan is a plan: one direction per interval, balance holds with the day's data
        assert np.all(np.minimum(got.charge_kw, got.discharge_kw) <= 1e-6)
        assert np.all(np.minimum(got.grid_import_kw, got.grid_export_kw) <= 1e-6)
        balance = (got.pv_used_kw + got.grid_import_kw + got.discharge_kw - p.load_kw
                   - got.flexible_load_kw - got.charge_kw - got.grid_export_kw)
        assert np.abs(balance).max() < 1e-5
        if p.storage is not None:
            assert got.soc_kwh[-1] >= p.storage.terminal_min_kwh - 1e-6


def test_persistent_model_refuses_another_structure():
    cat = default_catalog()
    p1 = build_inputs(cat, cat.fleet.site("CZ-MG-01"), dt.date(2026, 7, 15), PlanOptions()).problem
    p2 = build_inputs(cat, cat.fleet.site("CZ-MG-02"), dt.date(2026, 7, 15), PlanOptions()).problem
    solver = PersistentDispatch(p1)
    with pytest.raises(ValueError, match="differs in structure"):
        solver.solve(p2)


# --------------------------------------------------------------------------- 3 days by hand

HAND_SITE = {
    "id": "HAND-1", "name": "hand case", "district": "新北", "park_type": "test",
    "tariff_id": "jiangsu-ci-two-part-1-10kv", "billing_basis": "demand",
    "location": {"latitude": 31.81, "longitude": 119.97, "altitude_m": 5.0},
    "load": {"archetype": "two_shift", "peak_kw": 150.0},
    "grid": {"transformer_kva": 200.0, "import_limit_kw": 400.0, "export_limit_kw": 0.0},
    "storage": {"power_kw": 500.0, "energy_kwh": 100.0, "eta_charge": 1.0,
                "eta_discharge": 1.0, "soc_min_frac": 0.0, "soc_max_frac": 1.0,
                "soc_initial_frac": 0.5, "grid_connection_date": dt.date(2025, 1, 15),
                "degradation_yuan_per_kwh": 0.01, "max_cycles_per_day": 1.0,
                "min_direction_hold_h": 0.0},
}


def _hand_catalog(storage: dict | None = None):
    site = dict(HAND_SITE, storage=dict(HAND_SITE["storage"], **(storage or {})))
    fleet = parse_fleet({"version": "t", "source": "test", "sites": [site]})
    cat = default_catalog()
    # the policy read literally (every discharged kWh), and no direction hold: the cases
    # below are worked out for that
    return dataclasses.replace(cat, fleet=fleet, feeders=None,
                               policies=PolicyBook([dataclasses.replace(cat.policy,
                                                                        rule="all")]))


def _hand_series(cat, opts: SimulationOptions) -> SiteSeries:
    """Valley 0.3 yuan/kWh 00-08, 1.0 yuan/kWh 08-24; load 50 kW 00-08, 100 kW 08-18 and
    20-24, 150 kW 18-20; no PV; the subsidy from the shipped policy."""
    index = period(opts)
    hour = index.hour.to_numpy()
    price = np.where(hour < 8, 0.3, 1.0)
    load = np.where(hour < 8, 50.0, np.where((hour >= 18) & (hour < 20), 150.0, 100.0))
    st = cat.fleet.sites[0].storage
    rate = subsidy_rate_series(cat.policy, st.power_kw, st.grid_connection_date, index,
                               opts.subsidy_rate_yuan_per_kwh).to_numpy()
    zero = np.zeros(len(index))
    return SiteSeries(index, price, zero, rate, zero, zero, load, load, "hand case")


def test_three_days_by_hand(tmp_path):
    """31 Jan - 2 Feb 2025, perfect foresight, lossless 500 kW / 100 kWh battery (start and
    nominal 50 kWh, one cycle a day), demand rate 40 yuan/kW-month, subsidy window from
    1 Feb (grid connection 15 Jan).

    Each day the evening 150 kW is shaved by s: the battery fills in the valley (+50 kWh,
    import 56.25 kW), discharges 2s kWh in 18-20 and must be back at 50 kWh by 24:00,
    recharging 2s - 50 kWh in 20-24 at (2s - 50)/4 kW on top of the 100 kW load. The peak
    is lowest when 150 - s = 100 + (2s - 50)/4: s = 125/3, peak 325/3 = 108.33 kW. Energy
    cost per day: 56.25 * 8 * 0.3 + 100 * 10 + 108.33 * 2 + 108.33 * 4 = 1785 yuan (the
    same every day: cycling at one price is free without losses). Discharge: 2s = 83.33 kWh
    on 31 Jan (degradation breaks the tie), the cycle cap 100 kWh inside the window (each
    extra kWh earns 0.3 - 0.01). Subsidy 0 + 30 + 30 = 60 yuan. Demand charge January
    (one day) 40 * 108.33 = 4333.33 yuan, February the same (its own month peak).
    """
    cat = _hand_catalog()
    opts = SimulationOptions(start=dt.date(2025, 1, 31), days=3, foresight="perfect",
                             mip_rel_gap=1e-6, control="day-ahead")
    months, days, _ = simulate_site(cat, "HAND-1", opts, series=_hand_series(cat, opts),
                                    out=tmp_path)
    jan, feb = months
    peak = 325.0 / 3.0
    assert jan["month"] == "2025-01" and feb["month"] == "2025-02"
    assert jan["peak_kw"] == pytest.approx(peak, abs=1e-4)
    assert feb["peak_kw"] == pytest.approx(peak, abs=1e-4)
    assert jan["demand_charge_yuan"] == pytest.approx(40 * peak, abs=1e-3)
    assert feb["demand_charge_yuan"] == pytest.approx(40 * peak, abs=1e-3)
    assert jan["peak_without_storage_kw"] == pytest.approx(150.0)
    assert jan["energy_cost_yuan"] == pytest.approx(1785.0, abs=1e-3)
    assert feb["energy_cost_yuan"] == pytest.approx(2 * 1785.0, abs=1e-3)
    assert jan["discharge_kwh"] == pytest.approx(250.0 / 3.0, abs=1e-4)
    assert feb["discharge_kwh"] == pytest.approx(200.0, abs=1e-4)
    assert jan["subsidy_yuan"] == 0.0
    assert feb["subsidy_yuan"] == pytest.approx(60.0, abs=1e-4)
    assert feb["equivalent_full_cycles"] == pytest.approx(2.0, abs=1e-6)
    # SOC continuity: each day starts where the previous one ended, at the nominal 50 kWh
    assert [d["soc_start_kwh"] for d in days] == pytest.approx([50.0, 50.0, 50.0], abs=1e-6)
    assert [d["soc_end_kwh"] for d in days] == pytest.approx([50.0, 50.0, 50.0], abs=1e-6)


def test_a_day_the_connection_cannot_carry_is_planned_without_its_limit(tmp_path):
    """The hand case with a 90 kW import limit on 1 Feb 2025: above the limit the day needs
    10 kW x 10 h (08-18) + 60 kW x 2 h (18-20) + 10 kW x 4 h (20-24) = 260 kWh, and the
    battery can give at most its one cycle, 100 kWh. No plan keeps the limit (the run used
    to fail here); the day is planned without it and the real-time rule imports above the
    limit what the battery cannot cover: between 260 - 100 = 160 and 260 kWh."""
    cat = _hand_catalog()
    site = dict(HAND_SITE, grid=dict(HAND_SITE["grid"], import_limit_kw=90.0))
    cat = dataclasses.replace(cat, fleet=parse_fleet(
        {"version": "t", "source": "test", "sites": [site]}))
    opts = SimulationOptions(start=dt.date(2025, 2, 1), days=1, foresight="perfect",
                             control="day-ahead")
    (feb,), _, _ = simulate_site(cat, "HAND-1", opts, series=_hand_series(cat, opts),
                                 out=tmp_path)
    assert 160.0 - 1e-6 <= feb["import_over_limit_kwh"] <= 260.0 + 1e-6
    assert feb["discharge_kwh"] <= 100.0 + 1e-6


# --------------------------------------------------------------------------- subsidy windows


def test_subsidy_window_edges_across_a_month_boundary(tmp_path):
    """Grid connection 15 Jan 2025: nothing is paid on 31 Jan, 0.3 x 100 kWh (the cycle cap,
    see the hand case) from 1 Feb, the month after connection; a 0.49 MW station of the
    same day earns nothing (and discharges only the 83.33 kWh the peak shave needs); a
    station connected 2023-01-10 (window Feb 2023 - Jan 2025) earns on 31 Jan only."""
    opts = SimulationOptions(start=dt.date(2025, 1, 31), days=3, foresight="perfect",
                             mip_rel_gap=1e-6, control="day-ahead")

    def run(**storage):
        cat = _hand_catalog(storage)
        _, days, _ = simulate_site(cat, "HAND-1", opts, series=_hand_series(cat, opts))
        return {d["date"]: d["subsidy_yuan"] for d in days}, days

    paid, _ = run()
    assert paid == pytest.approx({"2025-01-31": 0.0, "2025-02-01": 30.0, "2025-02-02": 30.0})
    small, small_days = run(power_kw=490.0)
    assert small == {"2025-01-31": 0.0, "2025-02-01": 0.0, "2025-02-02": 0.0}
    assert small_days[1]["discharge_kwh"] == pytest.approx(250.0 / 3.0)  # still shaves, unpaid
    old, _ = run(grid_connection_date=dt.date(2023, 1, 10))
    assert old == pytest.approx({"2025-01-31": 30.0, "2025-02-01": 0.0, "2025-02-02": 0.0})


def test_the_simulation_pays_by_the_policys_counting_rule(tmp_path):
    """The hand case under the two rules a rate series cannot carry (it paid every kWh).
    ``annual_hours_cap`` with 0.3 h: 0.3 x 500 kW = 150 kWh a calendar year. 1 Feb uses
    100 kWh of it (30 yuan), 2 Feb gets the 50 kWh left (15 yuan) and discharges only the
    83.33 kWh the peak shave needs (more would earn nothing and wear 0.01 yuan/kWh).
    ``net_of_grid_charging``: no PV, the lossless battery ends each day where it started,
    so it charges from the grid what it discharges and is paid max(0, D - G) = 0."""
    opts = SimulationOptions(start=dt.date(2025, 1, 31), days=3, foresight="perfect",
                             mip_rel_gap=1e-6, control="day-ahead")

    def run(**rule):
        cat = _hand_catalog()
        cat = dataclasses.replace(cat, policies=PolicyBook(
            [dataclasses.replace(cat.policy, **rule)]))
        _, days, _ = simulate_site(cat, "HAND-1", opts, series=_hand_series(cat, opts))
        return ({d["date"]: d["subsidy_yuan"] for d in days},
                [d["discharge_kwh"] for d in days])

    paid, discharge = run(rule="annual_hours_cap", annual_hours=0.3)
    assert paid == pytest.approx({"2025-01-31": 0.0, "2025-02-01": 30.0, "2025-02-02": 15.0})
    assert discharge[1:] == pytest.approx([100.0, 250.0 / 3.0], abs=1e-4)
    paid, _ = run(rule="net_of_grid_charging")
    assert paid == pytest.approx({"2025-01-31": 0.0, "2025-02-01": 0.0, "2025-02-02": 0.0},
                                 abs=1e-6)


def test_subsidy_rate_zero_and_blind_dispatch():
    """Rate 0 pays nothing; subsidy-blind plans on the hand case still earn 0.3 x their
    (smaller) discharge inside the window: 83.33 kWh a day -> 25 yuan a day in February."""
    base = dict(start=dt.date(2025, 1, 31), days=3, foresight="perfect", mip_rel_gap=1e-6,
                control="day-ahead")
    cat = _hand_catalog()
    zero = SimulationOptions(**base, subsidy_rate_yuan_per_kwh=0.0)
    months, _, _ = simulate_site(cat, "HAND-1", zero, series=_hand_series(cat, zero))
    assert sum(m["subsidy_yuan"] for m in months) == 0.0
    blind = SimulationOptions(**base, subsidy_aware=False)
    months, _, _ = simulate_site(cat, "HAND-1", blind, series=_hand_series(cat, blind))
    assert months[1]["discharge_kwh"] == pytest.approx(2 * 250.0 / 3.0, abs=1e-4)
    assert months[1]["subsidy_yuan"] == pytest.approx(50.0, abs=1e-4)


# --------------------------------------------------------------------------- whole runs

FOUR = ["CZ-MG-01", "CZ-MG-03", "CZ-MG-05", "CZ-MG-09"]


@pytest.fixture(scope="module")
def july_runs(tmp_path_factory):
    """A 10-day July simulation of four sites: forecast-driven (in-process), the same on two
    worker processes and on a Dask local cluster, and with perfect foresight."""
    cat = default_catalog()
    opts = SimulationOptions(start=dt.date(2025, 7, 1), days=10, seed=7)
    base = tmp_path_factory.mktemp("sim")
    runs = {
        "serial": simulate(cat, opts, FOUR, out=base / "serial"),
        "pool": simulate(cat, opts, FOUR, out=base / "pool", jobs=2),
        "dask": simulate(cat, opts, FOUR, out=base / "dask", jobs=2, executor="dask"),
        "perfect": simulate(cat, opts.model_copy(update={"foresight": "perfect"}), FOUR),
        "compare": simulate(cat, opts.model_copy(update={"compare_perfect": True}), FOUR),
    }
    return runs, base


def test_results_identical_across_executors(july_runs):
    runs, _ = july_runs
    timing = ["highs_ms", "update_ms"]
    for name in ("pool", "dask"):
        pd.testing.assert_frame_equal(runs["serial"].months, runs[name].months)
        pd.testing.assert_frame_equal(runs["serial"].days.drop(columns=timing),
                                      runs[name].days.drop(columns=timing))
    assert not runs["serial"].failures


def test_perfect_foresight_is_never_worse(july_runs):
    """Each site-month's perfect-foresight cost (every day re-planned on the actual PV and
    load from the same morning state) is at most the forecast-driven cost, and below it in
    total: forecasts have a price. The operation itself is unchanged by the comparison."""
    runs, _ = july_runs
    fc, cmp = runs["serial"].months, runs["compare"].months
    pd.testing.assert_frame_equal(fc.drop(columns="perfect_net_cost_yuan"),
                                  cmp.drop(columns="perfect_net_cost_yuan"))
    assert fc["perfect_net_cost_yuan"].isna().all()
    # totals without the comparison leave it out (they said 0.0 yuan)
    assert "perfect_net_cost_yuan" not in runs["serial"].fleet_totals()
    assert runs["compare"].fleet_totals()["perfect_net_cost_yuan"] == pytest.approx(
        cmp["perfect_net_cost_yuan"].sum())
    assert (cmp["perfect_net_cost_yuan"] <= cmp["net_cost_yuan"] + 1e-6).all()
    assert cmp["perfect_net_cost_yuan"].sum() < cmp["net_cost_yuan"].sum() - 100.0
    # the standalone perfect-foresight operation has nothing to correct
    assert runs["serial"].months["corrected_intervals"].sum() > 0
    assert runs["perfect"].months["corrected_intervals"].sum() == 0


def test_forecast_run_accounts_consistently(july_runs):
    """Month rows agree with their days and with the definitions: subsidy = the days' sum,
    SOC continuity day to day, net cost = energy + demand + degradation - subsidy."""
    runs, _ = july_runs
    r = runs["serial"]
    for sid, days in r.days.groupby("site_id"):
        m = r.months[r.months.site_id == sid].iloc[0]
        assert days["subsidy_yuan"].sum() == pytest.approx(m["subsidy_yuan"])
        assert days["discharge_kwh"].sum() == pytest.approx(m["discharge_kwh"])
        np.testing.assert_allclose(days["soc_start_kwh"].to_numpy()[1:],
                                   days["soc_end_kwh"].to_numpy()[:-1])
        assert m["net_cost_yuan"] == pytest.approx(
            m["energy_cost_yuan"] - m["export_revenue_yuan"] + m["demand_charge_yuan"]
            + m["degradation_cost_yuan"]
            - m["subsidy_yuan"])
        assert m["peak_kw"] == pytest.approx(days["month_peak_kw"].max())
        assert (days["gap"] <= 5e-3 + 1e-9).all()


def test_interrupted_run_resumes_after_its_last_complete_month(july_runs, tmp_path):
    """A run over 26-30 June and 1-5 July stopped during July (its July rows and two July
    days lost): running it again keeps June exactly, redoes July from June's final state of
    charge and ends within the certified gap of the uninterrupted run; a folder of a
    different simulation is refused."""
    cat = default_catalog()
    opts = SimulationOptions(start=dt.date(2025, 6, 26), days=10, seed=7)
    full = simulate(cat, opts, ["CZ-MG-05"], out=tmp_path / "full")
    folder = tmp_path / "cut"
    simulate(cat, opts, ["CZ-MG-05"], out=folder)
    months_csv = folder / "sites" / "CZ-MG-05.months.csv"
    days_csv = folder / "sites" / "CZ-MG-05.days.csv"
    lines = months_csv.read_text().splitlines()
    months_csv.write_text("\n".join(lines[:2]) + "\n")  # header + June
    days = days_csv.read_text().splitlines()
    days_csv.write_text("\n".join(days[:-3]) + "\n")  # as if killed inside July
    again = simulate(cat, opts, ["CZ-MG-05"], out=folder)
    june, july = again.months.iloc[0], again.months.iloc[1]
    pd.testing.assert_series_equal(june, full.months.iloc[0], check_names=False)
    d = again.days.set_index("date")
    assert d.loc["2025-07-01", "soc_start_kwh"] == pytest.approx(june["soc_end_kwh"])
    assert len(again.days) == 10
    assert july["net_cost_yuan"] == pytest.approx(full.months.iloc[1]["net_cost_yuan"],
                                                  rel=5e-3)
    with pytest.raises(InvalidInputError, match="different simulation: seed differ"):
        simulate(cat, opts.model_copy(update={"seed": 8}), ["CZ-MG-05"], out=folder)


def test_a_run_never_resumes_on_other_data(tmp_path):
    """A folder simulated with one subsidy policy file is refused to the same options on a
    data folder whose policy pays 0.2 instead of 0.3 yuan/kWh (it would otherwise keep the
    old months under the new policy's name); the data's versions are in run.json."""
    opts = SimulationOptions(start=dt.date(2026, 3, 30), days=1, control="day-ahead")
    out = tmp_path / "run"
    simulate(default_catalog(), opts, ["CZ-MG-01"], out=out)
    manifest = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert manifest["data_versions"]["subsidy_policy"] == ["changzhengbanfa-2024-32"]
    data = tmp_path / "data"
    shutil.copytree(PACKAGE_DATA, data)
    policy = data / DEFAULT_POLICY
    policy.write_text(policy.read_text(encoding="utf-8").replace(
        "rate_yuan_per_kwh = 0.3", "rate_yuan_per_kwh = 0.2"), encoding="utf-8")
    other = Catalog.load(data)
    assert other.policy.rate_yuan_per_kwh == 0.2
    assert other.fingerprint != default_catalog().fingerprint
    with pytest.raises(InvalidInputError, match="different simulation: the data files"):
        simulate(other, opts, ["CZ-MG-01"], out=out)
    # the same files in another folder are the same data: the run resumes
    assert Catalog.load(data).fingerprint == other.fingerprint
    shutil.copytree(PACKAGE_DATA, tmp_path / "copy")
    assert Catalog.load(tmp_path / "copy").fingerprint == default_catalog().fingerprint
    simulate(Catalog.load(tmp_path / "copy"), opts, ["CZ-MG-01"], out=out)
    # the same files but the site changed in the service's registry (its definition)
    cat = default_catalog()
    site = cat.fleet.site("CZ-MG-01")
    bigger = site.model_copy(update={"storage": site.storage.model_copy(
        update={"energy_kwh": 5000.0})})
    changed = dataclasses.replace(cat, fleet=cat.fleet.model_copy(update={"sites": tuple(
        bigger if s.id == "CZ-MG-01" else s for s in cat.fleet.sites)}))
    with pytest.raises(InvalidInputError, match="different simulation: the sites' definitions"):
        simulate(changed, opts, ["CZ-MG-01"], out=out)


def test_reproducible_and_seed_sensitive():
    cat = default_catalog()
    opts = SimulationOptions(start=dt.date(2025, 7, 1), days=2, seed=1)
    a = simulate(cat, opts, ["CZ-MG-09"])
    b = simulate(cat, opts, ["CZ-MG-09"])
    c = simulate(cat, opts.model_copy(update={"seed": 2}), ["CZ-MG-09"])
    pd.testing.assert_frame_equal(a.months, b.months)
    assert a.months["pv_kwh"].iloc[0] != c.months["pv_kwh"].iloc[0]


def test_bad_options_are_named():
    model = with_policy(SimulationOptions, 0.3)

    def check(values):
        return parse(model, {"start": "2025-01-01", **values}, "invalid simulation options")

    with pytest.raises(InvalidInputError, match=r"months=0: .*allowed range \[1, 60\]"):
        check({"months": 0})
    with pytest.raises(InvalidInputError, match=r"subsidy_rate_yuan_per_kwh=0.5: .*\[0, 0.3\]"):
        check({"subsidy_rate_yuan_per_kwh": 0.5})
    with pytest.raises(InvalidInputError, match="tariff_policy='20 19'"):
        check({"tariff_policy": "20 19"})  # not a version name at all
    # a version name the data does not have is named against the data, before any work
    with pytest.raises(InvalidInputError, match="tariff_policy='2019': tariff version "
                       "'2019' unknown"):
        check_simulation(default_catalog(), check({"tariff_policy": "2019"}), ["CZ-MG-01"])
    with pytest.raises(InvalidInputError, match=r"start='2300-01-01': .*2099-12-31"):
        check({"start": "2300-01-01"})
    # the CLI and the API share the rule on the period's last day (the CLI used to simulate
    # 2100-01-01)
    with pytest.raises(InvalidInputError) as e:
        check({"start": "2099-12-31", "days": 2})
    assert e.value.problems == ["the simulated period ends on 2100-01-01, after 2099-12-31: "
                                "every day must lie from 2000-01-01 to 2099-12-31"]
    with pytest.raises(InvalidInputError, match=r"subsidy_rate_yuan_per_kwh=0.5: allowed "
                                                r"range \[0, 0.3\] under"):
        check_simulation(default_catalog(), SimulationOptions(start=dt.date(2025, 1, 1),
                                                              subsidy_rate_yuan_per_kwh=0.5),
                         None)


# --------------------------------------------------------------------------- weather, finance


def test_synthetic_weather_matches_the_climatology_month_by_month():
    """Each month's synthetic GHI equals the climatology's (the DOMAIN-calibrated file) to
    within 1 %, the year to 1,300 kWh/m2 +- 3 %, and the days really vary."""
    from forecasts.climate import climatology_weather, load_climatology
    from forecasts.synthetic import (
        DayStreams,
        ErrorModel,
        synthetic_clearsky_index,
        weather_from_kc,
    )
    from vpp.simulation import CITY, _location

    climate = load_climatology()
    index = period(SimulationOptions(start=dt.date(2025, 1, 1), months=12))
    city = _location(*CITY)
    kc = synthetic_clearsky_index(climate, city, index, ErrorModel(), DayStreams(5, "sky"))
    synth = weather_from_kc(kc, city, index, climate)["ghi"]
    clim = climatology_weather(climate, city, index)["ghi"]
    month = index.month
    for m in range(1, 13):
        assert synth[month == m].sum() == pytest.approx(clim[month == m].sum(), rel=0.01), m
    annual = synth.sum() * 0.25 / 1000.0
    assert annual == pytest.approx(1300.0, rel=0.03)
    daily = synth.groupby(index.date).sum() * 0.25 / 1000.0
    assert daily.std() / daily.mean() > 0.25  # cloudy and clear days, not a climatology


def test_finance_by_hand():
    """Capex 0.5 yuan/Wh x 100 kWh = 50,000 yuan. 12 simulated months, each: cost without
    storage 10,000, with storage 8,800 after 200 yuan of subsidy, so 1,000 yuan saved by
    operation -> 12,000 a year; O&M 2 % = 1,000 a year. Flows: -50,000, then 11,000 a year
    for 5 years without subsidy (13,400 in year 1 with its 2,400 yuan). NPV at 10 %:
    -50,000 + 11,000 x 3.790787 = -8,301.34 without subsidy, + 2,400 / 1.1 with. Payback
    without subsidy: 4 + 6,000 / 11,000 = 4.545 years."""
    from vpp.finance import FinanceInputs, annual_flows, irr, npv, payback_years, site_finance

    m = pd.DataFrame({"net_cost_without_storage_yuan": [10_000.0] * 12,
                      "net_cost_yuan": [8_800.0] * 12, "subsidy_yuan": [200.0] * 12,
                      "degradation_cost_yuan": [0.0] * 12})
    fi = FinanceInputs(capex_yuan_per_wh=0.5, life_years=5, discount_rate=0.10,
                       om_frac_per_year=0.02)
    flows = annual_flows(m, 100.0, fi, with_subsidy=False)
    assert flows.tolist() == pytest.approx([-50_000.0] + [11_000.0] * 5)
    assert annual_flows(m, 100.0, fi, True)[1] == pytest.approx(13_400.0)
    assert npv(0.10, flows) == pytest.approx(-8_301.34, abs=0.01)
    f = site_finance(m, 100.0, fi)
    assert f["npv_without_subsidy_yuan"] == pytest.approx(-8_301.34, abs=0.01)
    assert f["npv_with_subsidy_yuan"] == pytest.approx(-8_301.34 + 2_400 / 1.1, abs=0.01)
    assert f["payback_without_subsidy_years"] == pytest.approx(4 + 6 / 11)
    # a month simulated for 2 of its 31 days stands for the whole month: 100 yuan a day
    part = pd.DataFrame({"month": ["2025-03"], "days": [2],
                         "net_cost_without_storage_yuan": [1_000.0], "net_cost_yuan": [800.0],
                         "subsidy_yuan": [0.0], "degradation_cost_yuan": [0.0]})
    assert annual_flows(part, 100.0, fi, False)[1] == pytest.approx(100.0 * 31 * 12 - 1_000.0)
    # ... but its demand-charge saving is the month's already (billed on its peak): 200 yuan
    # of energy over 2 of 31 days and 1,000 yuan of demand charge make 4,100 yuan a month
    part = part.assign(demand_charge_without_storage_yuan=[5_000.0],
                       demand_charge_yuan=[4_000.0], net_cost_yuan=[-200.0])
    assert annual_flows(part, 100.0, fi, False)[1] == pytest.approx(4_100.0 * 12 - 1_000.0)
    # the subsidy of the paid window goes on after a 12-month run: 24 months from 2025-04
    year = m.assign(month=[f"2025-{k:02d}" if k <= 12 else f"2026-{k - 12:02d}"
                           for k in range(4, 16)], days=[30] * 12)
    window = (dt.date(2025, 4, 1), dt.date(2027, 3, 31))
    with_sub = annual_flows(year.assign(days=[pd.Period(x).days_in_month for x in year.month]),
                            100.0, fi, True, window)
    assert with_sub[1:4].tolist() == pytest.approx([13_400.0, 13_400.0, 11_000.0])
    assert irr(np.array([-100.0, 110.0])) == pytest.approx(0.10)
    assert payback_years(np.array([-100.0, 40.0, 40.0, 40.0])) == pytest.approx(2.5)
    assert payback_years(np.array([-100.0, 10.0, 10.0])) is None


def test_finance_life_starts_at_grid_connection():
    """The investment's life runs from the month of the battery's grid connection.

    Connected 2025-03-17, simulated February (no battery: 0 saved), March (battery from the
    17th: 500 saved), April and May (1,000 each): February is left out, March keeps its own
    500, and the months not simulated repeat the mean of the whole battery months, 1,000.
    Year 1 = 500 + 11 x 1,000 - 1,000 O&M = 10,500; later years 11,000.
    A station connected 2024-03-10 and simulated in March-April 2026 (1,000 saved a month,
    200 of subsidy in March 2026, the last month of its window 2024-04-01..2026-03-31): the
    life from 2024-03 projects 1,000 a month and 200 of subsidy in each window month.
    Year 1 (2024-03..2025-02) = 12,000 + 11 x 200 - 1,000 = 13,200; year 2 = 12,000 + 2,400
    - 1,000 = 13,400; year 3 (from 2026-03) = 12,000 + 200 - 1,000 = 11,200."""
    from vpp.finance import FinanceInputs, annual_flows, site_finance

    fi = FinanceInputs(capex_yuan_per_wh=0.5, life_years=5, discount_rate=0.10,
                       om_frac_per_year=0.02)

    def rows(months, saved, subsidy):
        return pd.DataFrame({
            "month": months, "days": [pd.Period(x).days_in_month for x in months],
            "net_cost_without_storage_yuan": [10_000.0] * len(months),
            "net_cost_yuan": [10_000.0 - v - u for v, u in zip(saved, subsidy, strict=True)],
            "subsidy_yuan": subsidy, "degradation_cost_yuan": [0.0] * len(months)})

    m = rows(["2025-02", "2025-03", "2025-04", "2025-05"], [0.0, 500.0, 1_000.0, 1_000.0],
             [0.0] * 4)
    flows = annual_flows(m, 100.0, fi, False, connected=dt.date(2025, 3, 17))
    assert flows.tolist() == pytest.approx([-50_000.0, 10_500.0] + [11_000.0] * 4)
    f = site_finance(m, 100.0, fi, connected=dt.date(2025, 3, 17))
    assert f["life_from"] == "2025-03" and f["finance_months"] == 2.0
    late = site_finance(m, 100.0, fi, connected=dt.date(2026, 6, 1))
    assert np.isnan(late["npv_with_subsidy_yuan"]) and np.isnan(late["irr_without_subsidy"])
    assert late["finance_note"] == ("the battery is connected on 2026-06-01, after the "
                                    "simulated months: nothing to annualise; simulate months "
                                    "after the connection")
    # a run from the connection day simulates 15 days of March: those are all its battery
    # days, so March stays 500 (scaled to 31 days it read 1,033)
    from_17th = m.iloc[1:].assign(days=[15, 30, 31])
    flows = annual_flows(from_17th, 100.0, fi, False, connected=dt.date(2025, 3, 17))
    assert flows[1] == pytest.approx(10_500.0)
    assert site_finance(from_17th, 100.0, fi, connected=dt.date(2025, 3, 17))[
        "finance_months"] == 2.0  # April and May: the months the battery was there for whole
    gone = site_finance(m, 100.0, fi, connected=dt.date(2019, 1, 1))
    assert gone["finance_note"] == ("the simulated months lie after the 5-year life that "
                                    "starts in 2019-01: nothing to annualise")
    running = rows(["2026-03", "2026-04"], [1_000.0, 1_000.0], [200.0, 0.0])
    window = (dt.date(2024, 4, 1), dt.date(2026, 3, 31))
    flows = annual_flows(running, 100.0, fi, True, window, connected=dt.date(2024, 3, 10))
    assert flows[:4].tolist() == pytest.approx([-50_000.0, 13_200.0, 13_400.0, 11_200.0])
    # a window opened on 2024-07-11 (CZ-MG-06: the policy's effective date) pays 21 of
    # July's 31 days: simulated July 2,100 and August 3,100 are 3,100 per whole window
    # month (5,200 / (21/31 + 1)), projected from September. Year 1 = 12,000 + 2,100 +
    # 3,100 + 6 x 3,100 - 1,000 = 34,800 (the mean 2,600 gave 31,800); year 2 = 12,000 +
    # 12 x 3,100 - 1,000 = 48,200; year 3 = 12,000 + 3,100 (March 2026) - 1,000 = 14,100.
    opened = rows(["2024-07", "2024-08"], [1_000.0, 1_000.0], [2_100.0, 3_100.0])
    window = (dt.date(2024, 7, 11), dt.date(2026, 3, 31))
    flows = annual_flows(opened, 100.0, fi, True, window, connected=dt.date(2024, 3, 5))
    assert flows[:4].tolist() == pytest.approx([-50_000.0, 34_800.0, 48_200.0, 14_100.0])


def test_report_states_indicators_and_finance(july_runs, tmp_path):
    from vpp.finance import FinanceInputs
    from vpp.sim_report import load_indicators, site_summary, write_report

    runs, _ = july_runs
    cat = default_catalog()
    files = write_report(runs["serial"], cat, tmp_path, FinanceInputs())
    text = files["report.md"].read_text(encoding="utf-8")
    summary = site_summary(runs["serial"], cat, FinanceInputs())
    share = summary.set_index("site_id")["renewable_share_frac"]
    target = next(i for i in load_indicators(cat) if i.key == "renewable_share_frac")
    assert target.target == 0.30
    met = int((share >= 0.30).sum())
    assert f"met by {met} of {len(share)} sites" in text
    assert "## Storage finance" in text and "npv_with_subsidy_yuan" in text
    months = pd.read_csv(files["months.csv"])
    assert months["subsidy_yuan"].sum() == pytest.approx(
        runs["serial"].months["subsidy_yuan"].sum())
    assert files["report.html"].read_text(encoding="utf-8").count("<table>") >= 3
    assert (tmp_path / "subsidy_by_month.png").read_bytes()[:4] == b"\x89PNG"


# --------------------------------------------------------------------------- command line


def test_cli_simulate_writes_report_and_resumes(tmp_path):
    from click.testing import CliRunner

    from vpp.cli import main

    out = tmp_path / "sim"
    args = ["simulate", "--sites", "CZ-MG-09,CZ-MG-13", "--start", "2025-06-29", "--days", "4",
            "--jobs", "1", "--out", str(out)]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "simulated 2 sites" in r.output and "site-months" in r.output
    months = pd.read_csv(out / "months.csv")
    assert sorted(months["month"].unique()) == ["2025-06", "2025-07"]
    assert (out / "report.html").is_file() and (out / "sites.csv").is_file()
    again = CliRunner().invoke(main, args)  # everything already done: same numbers
    assert again.exit_code == 0
    pd.testing.assert_frame_equal(pd.read_csv(out / "months.csv"), months)
    bad = CliRunner().invoke(main, ["simulate", "--sites", "CZ-MG-99", "--days", "2",
                                    "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "CZ-MG-99" in bad.output and "Traceback" not in bad.output
    bad = CliRunner().invoke(main, ["simulate", "--subsidy-rate", "0.4", "--days", "1"])
    assert bad.exit_code == 2 and "0.4" in bad.output


def test_sensitivity_sweep_runs_each_scenario(tmp_path):
    """Two rates x one tariff policy: rate 0 pays nothing; the 0.3 row equals a direct run
    with the same options."""
    from vpp.finance import FinanceInputs
    from vpp.scenarios import sensitivity

    cat = default_catalog()
    opts = SimulationOptions(start=dt.date(2025, 7, 1), days=2)
    table = sensitivity(cat, opts, ["CZ-MG-01"], [0.0, 0.3], ["2025"], FinanceInputs(),
                        out=tmp_path)
    assert table["subsidy_rate_yuan_per_kwh"].tolist() == [0.0, 0.3]
    assert table.loc[0, "subsidy_yuan"] == 0.0
    direct = simulate(cat, opts.model_copy(update={"subsidy_rate_yuan_per_kwh": 0.3,
                                                   "tariff_policy": "2025"}), ["CZ-MG-01"])
    assert table.loc[1, "subsidy_yuan"] == pytest.approx(direct.months["subsidy_yuan"].sum())
    assert table.loc[1, "subsidy_yuan"] > 0
    assert (tmp_path / "rate-0.3_tariff-2025" / "run.json").is_file()


def test_user_weather_file_drives_the_actual_pv(tmp_path):
    """A weather CSV replaces the synthetic sky: all-zero irradiance gives no PV at all,
    a clear hour-by-hour sky gives more PV than the synthetic (partly cloudy) days."""
    from forecasts.weather import interval_clearsky, read_weather
    from vpp.simulation import CITY, _location

    index = pd.date_range("2025-07-01", periods=48, freq="1h", tz="Asia/Shanghai")
    clear = interval_clearsky(_location(*CITY), index, pd.Timedelta(hours=1), "start")["ghi"]
    cat = default_catalog()
    opts = SimulationOptions(start=dt.date(2025, 7, 1), days=2, seed=4)
    pv = {}
    for name, ghi in (("dark", np.zeros(48)), ("clear", clear.to_numpy())):
        path = tmp_path / f"{name}.csv"
        pd.DataFrame({"timestamp": index.strftime("%Y-%m-%dT%H:%M"), "ghi": ghi,
                      "temp_air": 28.0}).to_csv(path, index=False)
        res = simulate(cat, opts, ["CZ-MG-09"], weather=read_weather(path))
        pv[name] = res.months["pv_kwh"].sum()
    synthetic = simulate(cat, opts, ["CZ-MG-09"]).months["pv_kwh"].sum()
    assert pv["dark"] == 0.0
    assert pv["clear"] > synthetic > 0


def test_cli_simulate_on_an_epw_file(tmp_path):
    """`--weather site.epw`: the typical-year file is put on the period's year and drives
    the day (a clear 21 June: 800 W/m2 at noon)."""
    from click.testing import CliRunner

    from tests.test_weather import _epw_text
    from vpp.cli import main

    text = _epw_text()  # 21 June, hour by hour; made 20-22 June so the day has neighbours
    head, rows = text.splitlines()[:8], text.splitlines()[8:]
    days = [r.replace("2026,6,21,", f"2026,6,{d},", 1) for d in (20, 21, 22) for r in rows]
    epw = tmp_path / "site.epw"
    epw.write_text("\n".join(head + days) + "\n")
    out = tmp_path / "sim"
    r = CliRunner().invoke(main, ["simulate", "--sites", "CZ-MG-09", "--start", "2026-06-21",
                                  "--days", "1", "--jobs", "1", "--weather", str(epw),
                                  "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "EPW site.epw" in (out / "run.json").read_text(encoding="utf-8")
    assert pd.read_csv(out / "months.csv")["pv_kwh"].iloc[0] > 0


def test_measured_actuals_replace_the_synthetic_ones(tmp_path):
    """`--actuals DIR`: a site's measured load (500 kW flat) and PV (none) are what the days
    are realised with: PV 0 kWh, consumption 2 days x 24 h x 500 kW + the shiftable loads'
    daily energy; a gap in the file is an error naming the site, column and first gap."""
    from click.testing import CliRunner

    from vpp.cli import main

    cat = default_catalog()
    site = cat.fleet.site("CZ-MG-09")
    idx = pd.date_range("2025-07-01", periods=2 * 96, freq="15min")
    folder = tmp_path / "measured"
    folder.mkdir()
    pd.DataFrame({"timestamp": idx.strftime("%Y-%m-%dT%H:%M"), "load_kw": 500.0,
                  "pv_kw": 0.0}).to_csv(folder / "CZ-MG-09.csv", index=False)
    out = tmp_path / "sim"
    args = ["simulate", "--sites", "CZ-MG-09", "--start", "2025-07-01", "--days", "2",
            "--jobs", "1", "--actuals", str(folder), "--out", str(out)]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    m = pd.read_csv(out / "months.csv").iloc[0]
    assert m["pv_kwh"] == 0.0
    flex = sum(f.energy_kwh for f in site.flexible_loads)
    assert m["consumption_kwh"] == pytest.approx(2 * 24 * 500.0 + 2 * flex)
    pd.DataFrame({"timestamp": idx[:100].strftime("%Y-%m-%dT%H:%M"), "load_kw": 500.0}
                 ).to_csv(folder / "CZ-MG-09.csv", index=False)
    bad = CliRunner().invoke(main, [*args[:-1], str(tmp_path / "sim2")])
    assert bad.exit_code == 1 and "CZ-MG-09 load_kw: no value for 92 of 192" in bad.output


def test_a_calendar_day_is_the_same_whatever_day_the_run_starts():
    """June 2026 of CZ-MG-01 simulated from 2026-06-01 and from 2026-05-10: the same actual
    load and PV, the same forecasts, interval by interval (the synthetic weather, forecast
    errors and load factors belong to calendar days), hence the same no-storage peak."""
    cat = default_catalog()
    site = cat.fleet.site("CZ-MG-01")
    errors = load_error_model()
    june = SimulationOptions(start=dt.date(2026, 6, 1), months=1)
    early = SimulationOptions(start=dt.date(2026, 5, 10), days=52)
    a = site_series(cat, site, june, errors)
    b = site_series(cat, site, early, errors)
    sel = b.index.get_indexer(a.index)
    for name in ("load_actual_kw", "pv_actual_kw", "load_forecast_kw", "pv_forecast_kw"):
        np.testing.assert_allclose(getattr(b, name)[sel], getattr(a, name), rtol=0, atol=1e-9,
                                   err_msg=name)
    assert a.load_actual_kw.max() == pytest.approx(b.load_actual_kw[sel].max())


def test_short_runs_warn_that_finance_is_annualised(tmp_path):
    """Finance from 3 months is annualised with a loud warning, in the report and on the
    command line; 12 months carry none."""
    from click.testing import CliRunner

    from vpp.cli import main
    from vpp.finance import annualisation_warning

    assert "from 3 simulated month(s) annualised" in annualisation_warning(3)
    assert annualisation_warning(12) is None
    out = tmp_path / "sim"
    r = CliRunner().invoke(main, ["simulate", "--sites", "CZ-MG-09", "--start", "2025-07-01",
                                  "--days", "2", "--jobs", "1", "--control", "day-ahead",
                                  "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "WARNING: NPV, IRR and payback come from 2 simulated day(s)" in r.output
    assert "**WARNING: NPV, IRR and payback" in (out / "report.md").read_text()


def test_subsidy_only_discharge_per_month():
    """Planned subsidy-blind each morning too, the month reports the discharge only the
    subsidy causes; with a zero rate there is none."""
    cat = default_catalog()
    base = dict(start=dt.date(2025, 7, 1), days=2, compare_blind=True, control="day-ahead")
    paid = simulate(cat, SimulationOptions(**base), ["CZ-MG-01"]).months.iloc[0]
    zero = simulate(cat, SimulationOptions(**base, subsidy_rate_yuan_per_kwh=0.0),
                    ["CZ-MG-01"]).months.iloc[0]
    assert paid["subsidy_only_discharge_kwh"] > 0
    assert zero["subsidy_only_discharge_kwh"] == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(simulate(cat, SimulationOptions(start=dt.date(2025, 7, 1), days=1,
                                                    control="day-ahead"),
                             ["CZ-MG-01"]).months.iloc[0]["subsidy_only_discharge_kwh"])


def _html_problems(text: str) -> list[str]:
    """Nesting problems of an HTML document: unclosed or stray tags, ``<li>`` outside a
    list, rows outside a table."""
    from html.parser import HTMLParser

    void = {"meta", "img", "br", "hr", "input", "link"}
    problems: list[str] = []
    stack: list[str] = []

    class Check(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "li" and (not stack or stack[-1] not in ("ul", "ol")):
                problems.append(f"<li> inside <{stack[-1] if stack else ''}>")
            if tag == "tr" and (not stack or stack[-1] not in ("thead", "tbody", "table")):
                problems.append("<tr> outside a table")
            if tag not in void:
                stack.append(tag)

        def handle_endtag(self, tag):
            if not stack or stack[-1] != tag:
                problems.append(f"</{tag}> closes <{stack[-1] if stack else ''}>")
            else:
                stack.pop()

    Check().feed(text)
    return problems + ([f"unclosed {stack}"] if stack else [])


def test_html_reports_are_valid_documents_in_both_languages(july_runs, tmp_path):
    from vpp.finance import FinanceInputs
    from vpp.plotting import cjk_font
    from vpp.sim_report import savings_parts, site_summary, write_report

    runs, _ = july_runs
    cat = default_catalog()
    files = write_report(runs["serial"], cat, tmp_path, FinanceInputs())
    en = files["report.html"].read_text(encoding="utf-8")
    zh = files["report.zh-CN.html"].read_text(encoding="utf-8")
    assert _html_problems("<ul><p>x</ul>") and _html_problems("<li>x</li>")  # the check bites
    assert _html_problems(en) == [] and _html_problems(zh) == []
    assert '<html lang="en">' in en and "<h2>Action-plan indicators</h2>" in en
    assert '<html lang="zh-CN">' in zh and "<h2>行动方案指标</h2>" in zh and "元" in zh
    assert ('src="net_cost.zh-CN.png"' in zh) and 'src="net_cost.png"' in en
    assert ("图表以英文标注" in zh) == (cjk_font() is None)
    summary = site_summary(runs["serial"], cat, None)
    parts = savings_parts(summary)  # the parts add up to the savings, site by site
    total = parts[["energy_yuan", "demand_yuan", "subsidy_yuan", "wear_yuan"]].sum(axis=1)
    assert total.to_numpy() == pytest.approx(parts["savings_yuan"].to_numpy(), abs=1e-6)
    for name in ("net_cost.png", "net_cost.zh-CN.png", "subsidy_by_month.zh-CN.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_a_site_named_twice_is_simulated_once():
    from vpp.simulation import check_simulation

    opts = SimulationOptions(start=dt.date(2025, 7, 1), days=1)
    ids = check_simulation(default_catalog(), opts, ["CZ-MG-01", "CZ-MG-05", "CZ-MG-01"])
    assert ids == ["CZ-MG-01", "CZ-MG-05"]


def test_any_tariff_version_in_the_data_can_be_simulated_throughout(tmp_path):
    """A tariff version added as a file (a copy of 426号 from 2027-01-01, every price x 1.5)
    can be applied throughout a simulation by its name: one July 2025 day of CZ-MG-01 then
    costs more than 1.3 times the energy of the same day under 426号 (every price x 1.5;
    the battery shifts some import, so not exactly 1.5); a sensitivity run compares it with
    the shipped two; an unknown name is refused naming the option."""
    from vpp.scenarios import subsidy_rates, tariff_policies

    data = tmp_path / "data"
    shutil.copytree(PACKAGE_DATA, data)
    src = (data / "tariffs" / "jiangsu-ci-2025-426.toml").read_text(encoding="utf-8")
    new = (src.replace('version = "su-fagaijiage-2025-426"', 'version = "agency-2027-01"')
           .replace("effective_from = 2025-06-01", "effective_from = 2027-01-01")
           .replace("peak = 0.97", "peak = 1.455").replace("flat = 0.65", "flat = 0.975")
           .replace("valley = 0.39", "valley = 0.585"))
    (data / "tariffs" / "jiangsu-ci-2027-01.toml").write_text(new, encoding="utf-8")
    cat = Catalog.load(data)
    assert tariff_policies(cat, None) == ["agency-2027-01", "2025", "2023"]
    assert subsidy_rates(cat) == [0.0, 0.1, 0.2, 0.3]
    opts = SimulationOptions(start=dt.date(2025, 7, 1), days=1, control="day-ahead")
    with pytest.raises(InvalidInputError, match=r"tariff_policy='bogus': tariff version "
                       r"'bogus' unknown"):
        simulate(cat, opts.model_copy(update={"tariff_policy": "bogus"}), ["CZ-MG-01"])
    base = simulate(cat, opts.model_copy(update={"tariff_policy": "2025"}), ["CZ-MG-01"])
    dear = simulate(cat, opts.model_copy(update={"tariff_policy": "agency-2027-01"}),
                    ["CZ-MG-01"])
    assert dear.months["energy_cost_yuan"].iloc[0] > 1.3 * base.months[
        "energy_cost_yuan"].iloc[0]
