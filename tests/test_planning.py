"""Plans of the shipped pilot sites: self-describing, audited, subsidy and baseline by hand."""

from __future__ import annotations

import datetime as dt
import pickle
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import assert_valid_plan

from models.errors import InfeasiblePlanError, InvalidInputError
from vpp.catalog import PACKAGE_DATA, Catalog
from vpp.flexibility import site_envelope
from vpp.options import PlanOptions, parse, with_policy
from vpp.planning import plan_fleet, plan_site
from vpp.timebase import horizon

DAY = dt.date(2026, 7, 15)


@pytest.fixture(scope="module")
def plan01(catalog):
    p = plan_site(catalog, "CZ-MG-01", DAY)
    assert_valid_plan(p)
    return p


def test_plan_document(plan01):
    p = plan01
    assert p["site_id"] == "CZ-MG-01"
    assert p["start"] == "2026-07-15T00:00:00+08:00"
    assert p["end"] == "2026-07-16T00:00:00+08:00"
    assert p["interval_minutes"] == 15 and p["status"] == "optimal"
    solver = p["solver"]
    assert solver["name"] == "HiGHS" and solver["version"]
    assert solver["optimality_gap"] <= 1e-3
    assert solver["objective_bound_yuan"] <= solver["objective_yuan"] + 1e-6
    for key in ("pv_forecast_kw", "load_kw", "import_price_yuan_per_kwh",
                "export_price_yuan_per_kwh", "subsidy_yuan_per_kwh"):
        assert len(p["inputs"][key]) == 96, key
    for key in ("pv_used_kw", "pv_curtailed_kw", "charge_kw", "discharge_kw", "soc_kwh",
                "grid_import_kw", "grid_export_kw", "flexible_load_kw"):
        assert len(p["intervals"][key]) == 96, key
    st = p["parameters"]["storage"]
    assert (st["power_kw"], st["energy_kwh"], st["eta_charge"]) == (2000.0, 4000.0, 0.93)
    assert p["parameters"]["tariff"]["version"] == "su-fagaijiage-2025-426"
    assert "illustrative" in p["sources"]["fleet"]
    for key in ("energy_cost_yuan", "export_revenue_yuan", "demand_charge_yuan",
                "degradation_cost_yuan", "discharge_kwh", "subsidy_yuan", "objective_yuan",
                "baseline_cost_yuan", "savings_yuan", "self_consumption_ratio",
                "renewable_share"):
        assert key in p["kpis"], key


def test_subsidy_in_window(plan01):
    """CZ-MG-01: 2 MW connected 2025-03-17, paid 2025-04-01..2027-03-31 at 0.3 yuan/kWh on
    discharge in peak and flat periods (the shipped counting rule), none in the valley."""
    p = plan01
    window = p["parameters"]["subsidy"]["window"]
    assert window == {"eligible": True, "first_paid_day": "2025-04-01",
                      "last_paid_day": "2027-03-31"}
    rate = np.array(p["inputs"]["subsidy_yuan_per_kwh"])
    valley = np.isin(p["inputs"]["period"], ["valley", "deep_valley"])
    assert set(rate[~valley]) == {0.3} and set(rate[valley]) == {0.0}
    k = p["kpis"]
    paid = 0.25 * np.array(p["intervals"]["discharge_kw"])[~valley].sum()
    assert k["subsidy_yuan"] == pytest.approx(0.3 * paid, abs=1e-6)
    assert k["discharge_kwh"] == pytest.approx(0.25 * sum(p["intervals"]["discharge_kw"]))
    assert k["discharge_kwh"] > 0


def test_baseline_by_hand(plan01):
    """Same day without storage or flexibility: the flexible load spread evenly over its
    window, PV to the load, surplus exported up to the limit, demand charge on the peak."""
    p = plan01
    inp, par = p["inputs"], p["parameters"]
    load = np.array(inp["load_kw"])
    for sh in par["shiftable_loads"]:
        hours = (sh["end"] - sh["start"]) / 4
        load[sh["start"]:sh["end"]] += sh["energy_kwh"] / hours
    net = load - np.array(inp["pv_forecast_kw"])
    imp = np.clip(net, 0, None)
    exp = np.minimum(np.clip(-net, 0, None), par["grid"]["export_limit_kw"])
    cost = 0.25 * float(np.sum(np.array(inp["import_price_yuan_per_kwh"]) * imp)
                        - np.sum(np.array(inp["export_price_yuan_per_kwh"]) * exp))
    cost += par["grid"]["demand_rate_yuan_per_kw_month"] * imp.max()
    assert p["kpis"]["baseline_cost_yuan"] == pytest.approx(cost, abs=1e-3)
    assert p["kpis"]["savings_yuan"] == pytest.approx(cost - p["kpis"]["net_cost_yuan"], abs=1e-3)
    assert p["kpis"]["savings_yuan"] > 0


def test_subsidy_blind_vs_aware(catalog, plan01):
    blind = plan_site(catalog, "CZ-MG-01", DAY, PlanOptions(subsidy_aware=False))
    assert_valid_plan(blind)
    kb, ka = blind["kpis"], plan01["kpis"]
    assert blind["parameters"]["subsidy"]["counted_in_objective"] is False
    # the blind objective leaves the subsidy out; the subsidy it would still earn is reported
    assert blind["solver"]["objective_yuan"] == pytest.approx(
        kb["net_cost_yuan"] + kb["subsidy_yuan"], abs=1e-3)
    assert kb["subsidy_yuan"] == pytest.approx(0.3 * kb["discharge_kwh"], abs=1e-6)
    # the blind plan is feasible for the aware problem, so the aware plan is no worse
    assert ka["net_cost_yuan"] <= kb["net_cost_yuan"] + 1e-3 * abs(kb["net_cost_yuan"])
    assert ka["discharge_kwh"] >= kb["discharge_kwh"]


@pytest.mark.parametrize(
    ("site", "last_paid"),
    [("CZ-MG-07", None),  # 250 kW: below 0.5 MW
     ("CZ-MG-02", "2026-05-31")],  # 3 MW connected 2024-05-20: paid 2024-06..2026-05
)
def test_no_subsidy_outside_window(catalog, site, last_paid):
    p = plan_site(catalog, site, DAY)
    assert_valid_plan(p)
    assert set(p["inputs"]["subsidy_yuan_per_kwh"]) == {0.0}
    assert p["kpis"]["subsidy_yuan"] == 0.0
    assert p["parameters"]["subsidy"]["window"]["last_paid_day"] == last_paid


def test_subsidy_rate_option(catalog):
    p = plan_site(catalog, "CZ-MG-11", DAY, PlanOptions(subsidy_rate_yuan_per_kwh=0.2))
    assert_valid_plan(p)
    rate = np.array(p["inputs"]["subsidy_yuan_per_kwh"])
    valley = np.isin(p["inputs"]["period"], ["valley", "deep_valley"])
    assert set(rate[~valley]) == {0.2} and set(rate[valley]) == {0.0}
    paid = 0.25 * np.array(p["intervals"]["discharge_kw"])[~valley].sum()
    assert p["kpis"]["subsidy_yuan"] == pytest.approx(0.2 * paid)


def test_two_day_plan_with_daily_cycle_cap(catalog):
    p = plan_site(catalog, "CZ-MG-19", DAY, PlanOptions(days=2))
    assert_valid_plan(p)
    assert len(p["intervals"]["soc_kwh"]) == 192
    assert p["end"] == "2026-07-17T00:00:00+08:00"
    dis = np.array(p["intervals"]["discharge_kw"])
    cap = 2.0 * p["parameters"]["storage"]["energy_kwh"]
    assert 0.25 * dis[:96].sum() <= cap + 1e-6 and 0.25 * dis[96:].sum() <= cap + 1e-6


def test_auto_and_milp_agree_on_a_hard_site(catalog):
    """CZ-MG-10 needs the MILP in auto mode; both paths certify 0.1 % and agree within it."""
    auto = plan_site(catalog, "CZ-MG-10", DAY)
    milp = plan_site(catalog, "CZ-MG-10", DAY, PlanOptions(method="milp"))
    for p in (auto, milp):
        assert_valid_plan(p)
    a, m = auto["solver"]["objective_yuan"], milp["solver"]["objective_yuan"]
    assert abs(a - m) <= 1e-3 * abs(m)
    assert auto["solver"]["objective_bound_yuan"] <= m + 1e-6
    assert milp["solver"]["objective_bound_yuan"] <= a + 1e-6


def test_month_peak_lowers_demand_charge(catalog, plan01):
    """Above a month-to-date peak of 4500 kW nothing of this day's ≈3980 kW peak is billed."""
    p = plan_site(catalog, "CZ-MG-01", DAY, PlanOptions(month_peak_kw=4500.0))
    assert_valid_plan(p)
    assert p["kpis"]["demand_charge_yuan"] == 0.0
    assert p["kpis"]["net_cost_yuan"] < plan01["kpis"]["net_cost_yuan"]


def test_user_load_and_pv(catalog):
    idx = horizon(DAY)
    load = pd.Series(1500.0, index=idx)
    pv = pd.Series(0.0, index=idx)
    p = plan_site(catalog, "CZ-MG-01", DAY, pv_kw=pv, load_kw=load)
    assert_valid_plan(p)
    assert set(p["inputs"]["load_kw"]) == {1500.0}
    assert p["sources"]["load"] == "user-supplied load"
    with pytest.raises(InvalidInputError, match=r"load_kw: no value for 4 of 96 plan intervals "
                                                 r"\(first 2026-07-15T23:00:00\+08:00\)"):
        plan_site(catalog, "CZ-MG-01", DAY, load_kw=load.iloc[:-4])


def test_load_beyond_the_connection_is_explained(catalog):
    idx = horizon(DAY)
    load = pd.Series(1500.0, index=idx)
    load.iloc[48] = 20000.0  # 12:00, far above 6340 kW import + 2000 kW storage + PV
    with pytest.raises(InfeasiblePlanError,
                       match=r"power balance: at 2026-07-15 12:00 load 20000.0 kW exceeds "
                             r"import limit 6340.0 kW"):
        plan_site(catalog, "CZ-MG-01", DAY, load_kw=load)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"days": 8}, r"days=8: .*allowed range \[1, 7\]"),
        ({"soc_initial_frac": 1.5}, r"soc_initial_frac=1.5: .*allowed range \[0, 1\]"),
        ({"month_peak_kw": -1}, r"month_peak_kw=-1: .*allowed range \[0, 1e\+07\]"),
        ({"subsidy_rate_yuan_per_kwh": 0.5}, r"subsidy_rate_yuan_per_kwh=0.5: .*allowed "
                                             r"range \[0, 0.3\]"),
        ({"mip_rel_gap": 0.1}, r"mip_rel_gap=0.1"),
        ({"tariff_version": "x"}, r"tariff version 'x' unknown"),
        # the site's SOC window, named as the option the user gave (was the model's
        # storage.soc_initial_kwh=40.0 in kWh)
        ({"soc_initial_frac": 0.01}, r"soc_initial_frac=0.01: allowed range \[0.05, 0.95\] "
                                     r"for CZ-MG-01 \(its SOC window, share of 4000 kWh\)"),
        ({"soc_initial_frac": 1.0}, r"soc_initial_frac=1: allowed range \[0.05, 0.95\]"),
        ({"soc_terminal_min_frac": 0.99}, r"soc_terminal_min_frac=0.99: allowed range"),
    ],
)
def test_bad_options(catalog, options, match):
    with pytest.raises(InvalidInputError, match=match):
        model = with_policy(PlanOptions, catalog.policy.max_rate_yuan_per_kwh)
        plan_site(catalog, "CZ-MG-01", DAY, parse(model, options, "invalid plan options"))


def test_every_bad_option_is_named_at_once(catalog):
    """Three bad options, three problems in one error (not just the first)."""
    model = with_policy(PlanOptions, catalog.policy.max_rate_yuan_per_kwh)
    with pytest.raises(InvalidInputError) as err:
        parse(model, {"soc_initial_frac": 1.5, "mip_rel_gap": -1,
                      "subsidy_rate_yuan_per_kwh": 0.5}, "invalid plan options")
    fields = sorted(p.split("=")[0] for p in err.value.problems)
    assert fields == ["mip_rel_gap", "soc_initial_frac", "subsidy_rate_yuan_per_kwh"]


def test_new_tariff_version_is_data_only(tmp_path):
    """A user adds a tariff version effective 2026-07-01 as a file: plans pick it up."""
    root = tmp_path / "data"
    shutil.copytree(PACKAGE_DATA, root)
    text = (root / "tariffs" / "jiangsu-ci-2025-426.toml").read_text("utf-8")
    text = (text.replace('version = "su-fagaijiage-2025-426"', 'version = "agency-2026-07"')
                .replace("effective_from = 2025-06-01", "effective_from = 2026-07-01")
                .replace("peak = 0.97", "peak = 1.01"))
    (root / "tariffs" / "agency-2026-07.toml").write_text(text, "utf-8")
    cat = Catalog.load(root)
    p = plan_site(cat, "CZ-MG-01", DAY)
    assert p["parameters"]["tariff"]["version"] == "agency-2026-07"
    assert max(p["inputs"]["import_price_yuan_per_kwh"]) == pytest.approx(1.212)  # 1.01 x 1.2
    old = plan_site(cat, "CZ-MG-01", dt.date(2026, 6, 30))
    assert old["parameters"]["tariff"]["version"] == "su-fagaijiage-2025-426"
    # a plan over the change records both versions (it named only the first day's)
    both = plan_site(cat, "CZ-MG-01", dt.date(2026, 6, 30), PlanOptions(days=2))
    assert both["parameters"]["tariff_versions"] == [
        {"from": "2026-06-30", "version": "su-fagaijiage-2025-426"},
        {"from": "2026-07-01", "version": "agency-2026-07"}]
    assert both["sources"]["tariff"].endswith("; from 2026-07-01: agency-2026-07")


def test_bad_user_series(catalog):
    idx = horizon(DAY)
    with pytest.raises(InvalidInputError, match=r"pv_kw: values must be >= 0 kW, minimum -5"):
        plan_site(catalog, "CZ-MG-01", DAY, pv_kw=pd.Series(-5.0, index=idx))
    with pytest.raises(InvalidInputError, match=r"soc_terminal_min_frac=1.2: .*allowed range"):
        parse(PlanOptions, {"soc_terminal_min_frac": 1.2}, "invalid plan options")


def test_bad_archetype_file(tmp_path):
    root = tmp_path / "data"
    shutil.copytree(PACKAGE_DATA, root)
    path = root / "loads" / "archetypes.toml"
    path.write_text(path.read_text("utf-8").replace("monthly_factor = [0.92, 0.80,",
                                                    "monthly_factor = [0.80,", 1), "utf-8")
    with pytest.raises(InvalidInputError, match=r"archetype two_shift: load shape "
                                                 r"two_shift.monthly_factor: need 12 values"):
        Catalog.load(root)


def test_parallel_fleet_equals_sequential(catalog):
    ids = ["CZ-MG-03", "CZ-MG-07", "CZ-MG-19"]
    seq = plan_fleet(catalog, DAY, site_ids=ids, jobs=1)
    par = plan_fleet(catalog, DAY, site_ids=ids, jobs=2)
    assert list(par) == ids
    for sid in ids:
        assert_valid_plan(par[sid])
        assert par[sid]["intervals"] == seq[sid]["intervals"]
        assert par[sid]["kpis"] == seq[sid]["kpis"]


def test_parallel_fleet_reports_errors_intact(catalog):
    """Errors raised in worker processes arrive with their problems listed, and the other
    sites still get their plans."""
    seen = {}
    plans = plan_fleet(catalog, DAY, PlanOptions(soc_initial_frac=0.01),
                       site_ids=["CZ-MG-01", "CZ-MG-02"], jobs=2,
                       on_plan=lambda sid, p, e: seen.__setitem__(sid, e))
    assert plans == {}
    for sid, err in seen.items():
        assert isinstance(err, InvalidInputError), sid
        assert err.problems[0].startswith("soc_initial_frac=0.01: allowed range [0.05, ")


def test_errors_survive_pickling():
    e = pickle.loads(pickle.dumps(InvalidInputError(["a: bad", "b: bad"], "invalid site")))
    assert e.problems == ["a: bad", "b: bad"] and str(e).startswith("invalid site (2 problem")
    f = pickle.loads(pickle.dumps(InfeasiblePlanError(["terminal SOC"], status="precheck")))
    assert f.status == "precheck" and f.reasons == ["terminal SOC"]


def test_incumbent_peak_cap_keeps_the_certified_optimum(catalog):
    """CZ-MG-05 on 2026-07-15 needs more than the LP bound: auto caps the import at the peak
    its incumbent allows and certifies 0.1 % against the uncapped problem's MILP."""
    auto = plan_site(catalog, "CZ-MG-05", DAY)
    milp = plan_site(catalog, "CZ-MG-05", DAY, PlanOptions(method="milp"))
    for p in (auto, milp):
        assert_valid_plan(p)
    assert any("import capped at" in n for n in auto["solver"]["notes"])
    a, m = auto["solver"]["objective_yuan"], milp["solver"]["objective_yuan"]
    assert abs(a - m) <= 1e-3 * abs(m)
    assert auto["solver"]["objective_bound_yuan"] <= m + 1e-6
    limit = auto["parameters"]["grid"]["import_limit_kw"]
    assert max(auto["intervals"]["grid_import_kw"]) <= limit + 1e-6


def test_no_storage_before_its_grid_connection(catalog):
    """CZ-MG-28's 4 MW / 8 MWh station is connected on 2026-10-16: a plan for 2026-07-15
    has no storage (nothing discharged, no battery flexibility) and says why; from the
    connection day on it has the battery."""
    before = plan_site(catalog, "CZ-MG-28", DAY)
    assert before["parameters"]["storage"] is None
    assert before["kpis"]["discharge_kwh"] == 0.0
    assert "not in service before its grid connection" in before["sources"]["storage"]
    assert max(site_envelope(before, 1.0)["down_kw"] - site_envelope(before, 1.0)[
        "down_kw"].clip(upper=max(before["intervals"]["pv_curtailed_kw"]))) <= 1e-9
    after = plan_site(catalog, "CZ-MG-28", dt.date(2026, 10, 16))
    assert after["parameters"]["storage"]["power_kw"] == 4000.0
    assert after["kpis"]["discharge_kwh"] > 0


def test_demand_charge_ranges_keep_the_certified_optimum(catalog):
    """CZ-MG-24 on 2026-07-13 (subsidised battery, 1 h direction hold): the LP relaxation
    cycles the battery where no import headroom allows it, so auto splits the demand charge
    into ranges (their LPs bound 445,613 yuan against the LP's 444,788) before its MILP. The
    Pyomo reference MILP, which shares none of that, agrees within the two certificates."""
    auto = plan_site(catalog, "CZ-MG-24", dt.date(2026, 7, 13))
    milp = plan_site(catalog, "CZ-MG-24", dt.date(2026, 7, 13), PlanOptions(method="milp"))
    for p in (auto, milp):
        assert_valid_plan(p)
        assert p["status"] == "optimal"
    assert any(n.startswith("demand charges split into ranges") for n in
               auto["solver"]["notes"])
    a, m = auto["solver"], milp["solver"]
    assert a["objective_bound_yuan"] <= m["objective_yuan"] + 1e-6
    assert m["objective_bound_yuan"] <= a["objective_yuan"] + 1e-6
    assert abs(a["objective_yuan"] - m["objective_yuan"]) <= 1e-3 * m["objective_yuan"]


def test_plan_reports_the_subsidy_only_discharge(catalog, plan01):
    """The discharge the subsidy alone causes is this plan's minus the same day planned
    subsidy-blind (each certified within 0.1 %), and the plan names it among its flags."""
    blind = plan_site(catalog, "CZ-MG-01", DAY, PlanOptions(subsidy_aware=False))
    k = plan01["kpis"]
    assert k["subsidy_only_discharge_kwh"] == pytest.approx(
        k["discharge_kwh"] - blind["kpis"]["discharge_kwh"], abs=1.0)
    assert k["subsidy_only_discharge_kwh"] > 0
    assert any("only because of the subsidy" in f for f in plan01["flags"])
    assert blind["kpis"]["subsidy_only_discharge_kwh"] == 0.0  # nothing to compare blind with
    assert k["valley_cycling_kwh"] == 0.0  # valley discharge earns nothing under peak_flat
