"""The shipped fleet exercises the rules; bad site data is rejected with every problem named."""

from __future__ import annotations

import copy
import datetime as dt
import tomllib

import pytest

from models.errors import InvalidInputError
from vpp.catalog import PACKAGE_DATA, Catalog
from vpp.sites import DISTRICTS, load_fleet, parse_fleet, parse_site
from vpp.subsidy import subsidy_window

RAW = tomllib.loads((PACKAGE_DATA / "fleet" / "changzhou-pilots.toml").read_text("utf-8"))


def test_fleet_covers_the_rules(catalog):
    fleet = catalog.fleet
    sites = fleet.sites
    assert len(sites) == 30 and fleet.illustrative
    assert {s.district for s in sites} == set(DISTRICTS)
    pv = [s.pv_dc_kwp for s in sites]
    assert min(pv) <= 400 and max(pv) >= 7000
    st = [s.storage for s in sites if s.storage]
    assert min(x.power_kw for x in st) == 200 and max(x.power_kw for x in st) == 5000
    two_hour = [x for x in st if x.energy_kwh == 2 * x.power_kw]
    assert len(two_hour) > len(st) / 2
    assert sum(x.power_kw < 500 for x in st) >= 5
    assert sum(s.grid.export_limit_kw == 0 for s in sites) >= 3
    assert {s.billing_basis for s in sites} == {"demand", "capacity"}
    years = {x.grid_connection_date.year for x in st}
    assert years == {2024, 2025, 2026}


def test_some_sites_before_inside_after_their_window(catalog):
    day = dt.date(2026, 7, 15)
    where = set()
    for s in catalog.fleet.sites:
        w = subsidy_window(catalog.policy, s.storage.power_kw, s.storage.grid_connection_date)
        if w:
            where.add("before" if day < w[0] else "after" if day > w[1] else "inside")
    assert where == {"before", "inside", "after"}


def site0() -> dict:
    return copy.deepcopy(RAW["sites"][0])


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda s: s["storage"].update(power_kw=-100.0),
         r"storage.power_kw: Input should be greater than 0 \(got -100.0\)"),
        (lambda s: s["storage"].update(eta_charge=0.0), r"storage.eta_charge: Input should be "
                                                        r"greater than 0"),
        (lambda s: s["storage"].update(eta_discharge=1.2), r"storage.eta_discharge: Input should "
                                                            r"be less than or equal to 1"),
        (lambda s: s["storage"].update(soc_min_frac=0.9, soc_max_frac=0.2),
         r"storage.soc_min_frac=0.9 > soc_max_frac=0.2"),
        (lambda s: s["storage"].update(soc_initial_frac=0.99),
         r"storage.soc_initial_frac=0.99: allowed range \[0.05, 0.95\]"),
        (lambda s: s.update(tariff_id="zhejiang"), r"tariff_id='zhejiang' unknown; known: "
                                                   r"jiangsu-ci-two-part-1-10kv"),
        (lambda s: s["load"].update(archetype="bakery"), r"load.archetype='bakery': allowed "),
        (lambda s: s.update(district="上海"), r"district: Input should be '新北'"),
        (lambda s: s["pv_arrays"][0].update(dc_kwp=0), r"pv_arrays.0.dc_kwp: Input should be "
                                                       r"greater than 0"),
        (lambda s: s["grid"].update(export_limit_kw=-1), r"grid.export_limit_kw"),
        (lambda s: s["location"].update(latitude=95), r"location.latitude"),
        (lambda s: s["flexible_loads"][0].update(window_start="09:00", window_end="08:00"),
         r"window_end 08:00 must be after window_start 09:00"),
        (lambda s: s["flexible_loads"][0].update(energy_kwh=1e6), r"energy_kwh=1000000.0 "
                                                                  r"outside \[0, 4960\] kWh"),
        (lambda s: s.update(colour="red"), r"colour: Extra inputs are not permitted"),
    ],
)
def test_site_errors(catalog, mutate, match):
    raw = site0()
    mutate(raw)
    with pytest.raises(InvalidInputError, match=match):
        parse_site(raw, tariff_ids=catalog.tariffs.ids, archetypes=set(catalog.archetypes))


def test_fleet_lists_every_problem_of_every_site(catalog):
    data = copy.deepcopy(RAW)
    data["sites"][0]["storage"]["power_kw"] = -1
    data["sites"][0]["storage"]["eta_charge"] = 1.5
    data["sites"][4]["tariff_id"] = "nope"
    data["sites"][7]["storage"]["soc_min_frac"] = 0.99
    data["sites"].append(copy.deepcopy(data["sites"][1]))
    with pytest.raises(InvalidInputError) as info:
        parse_fleet(data, tariff_ids=catalog.tariffs.ids, archetypes=set(catalog.archetypes))
    text = str(info.value)
    assert len(info.value.problems) == 5, text
    assert "sites[0] (CZ-MG-01).storage.power_kw" in text
    assert "sites[0] (CZ-MG-01).storage.eta_charge" in text
    assert "sites[4] (CZ-MG-05).tariff_id='nope' unknown" in text
    assert "sites[7] (CZ-MG-08).storage.soc_min_frac=0.99 > soc_max_frac=0.95" in text
    assert "duplicate ids ['CZ-MG-02']" in text


def test_fleet_file_errors(tmp_path):
    with pytest.raises(InvalidInputError, match=r"fleet file .*missing.toml not found"):
        load_fleet(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("sites = [", "utf-8")
    with pytest.raises(InvalidInputError, match=r"not valid TOML"):
        load_fleet(bad)
    empty = tmp_path / "empty.toml"
    empty.write_text('version = "1"\n', "utf-8")
    with pytest.raises(InvalidInputError,
                       match=r"(?s)sites: need a non-empty list.*source: required"):
        load_fleet(empty)


def test_unknown_site_id(catalog):
    with pytest.raises(InvalidInputError, match=r"site_id='CZ-MG-99' is not in the fleet; "
                                                 r"known: CZ-MG-01, CZ-MG-02"):
        catalog.fleet.site("CZ-MG-99")


def test_user_fleet_replaces_the_default(tmp_path):
    data = (PACKAGE_DATA / "fleet" / "changzhou-pilots.toml").read_text("utf-8")
    one = data.split("[[sites]]")
    path = tmp_path / "mine.toml"
    path.write_text(one[0] + "[[sites]]" + one[1], "utf-8")
    cat = Catalog.load(fleet=path)
    assert [s.id for s in cat.fleet.sites] == ["CZ-MG-01"]


def test_missing_data_dir(tmp_path):
    with pytest.raises(InvalidInputError, match=r"data folder .*nowhere does not exist"):
        Catalog.load(tmp_path / "nowhere")


def test_data_file_errors_name_the_file(tmp_path):
    """A data folder with a bad fleet value, or without its load archetypes, or with a
    malformed policy: one clear error naming the file, never a traceback."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(PACKAGE_DATA, data)
    fleet = data / "fleet" / "changzhou-pilots.toml"
    text = fleet.read_text(encoding="utf-8")
    fleet.write_text(text.replace("eta_charge = ", "eta_charge = 93 #", 1), encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"changzhou-pilots.toml: sites\[0\] "
                       r"\(CZ-MG-01\).storage.eta_charge") as err:
        Catalog.load(data)
    assert str(fleet) in err.value.context
    fleet.write_text(text, encoding="utf-8")
    policy = data / "policies" / "changzhou-storage-subsidy-2024.toml"
    policy.write_text(policy.read_text(encoding="utf-8").replace(
        "rate_yuan_per_kwh = 0.3", "rate_yuan_per_kwh = 0,3", 1), encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"subsidy policy file .*changzhou-storage-"
                       r"subsidy-2024.toml: not valid TOML"):
        Catalog.load(data)
    (data / "loads" / "archetypes.toml").unlink()
    with pytest.raises(InvalidInputError, match=r"load archetype file .*archetypes.toml not "
                       r"found"):
        Catalog.load(data)
