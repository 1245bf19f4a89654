"""The Changzhou storage subsidy as written: >= 0.5 MW, <= 0.3 yuan/kWh, from the first day of
the month after grid connection, for 24 months; and the counting rules the policy file may
name (the text names none)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import tomllib

import numpy as np
import pandas as pd
import pytest

from models.errors import InvalidInputError
from vpp.catalog import DEFAULT_POLICY, PACKAGE_DATA, Catalog
from vpp.subsidy import PolicyBook, SubsidyPolicy, parse_policy, subsidy_rate_series, subsidy_window

D = dt.date


@pytest.mark.parametrize(
    ("power_kw", "connected", "window"),
    [
        (490.0, D(2025, 3, 17), None),  # 0.49 MW: below the threshold, nothing
        (499.999, D(2025, 3, 17), None),
        (500.0, D(2025, 3, 17), (D(2025, 4, 1), D(2027, 3, 31))),  # exactly 0.5 MW counts
        (2000.0, D(2025, 3, 31), (D(2025, 4, 1), D(2027, 3, 31))),
        (2000.0, D(2025, 3, 1), (D(2025, 4, 1), D(2027, 3, 31))),  # connected on the 1st
        (2000.0, D(2025, 12, 1), (D(2026, 1, 1), D(2027, 12, 31))),  # across the year end
        # connected before the policy took effect (2024-07-11): paid from that day to the
        # end of its 24 months; a window over before it is nothing
        (2000.0, D(2024, 1, 31), (D(2024, 7, 11), D(2026, 1, 31))),
        (2000.0, D(2022, 5, 20), None),
        (2000.0, D(2022, 7, 20), (D(2024, 7, 11), D(2024, 7, 31))),
    ],
)
def test_window(catalog, power_kw, connected, window):
    assert subsidy_window(catalog.policy, power_kw, connected) == window


def idx(*stamps: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex([pd.Timestamp(s) for s in stamps]).tz_localize("Asia/Shanghai")


@pytest.fixture
def literal(catalog):
    """The shipped policy read literally: every discharged kWh counts."""
    return dataclasses.replace(catalog.policy, rule="all")


def test_rate_series_edges(literal):
    i = idx("2025-03-31 23:45", "2025-04-01 00:00", "2027-03-31 23:45", "2027-04-01 00:00")
    s = subsidy_rate_series(literal, 2000.0, D(2025, 3, 17), i)
    np.testing.assert_array_equal(s.to_numpy(), [0.0, 0.3, 0.3, 0.0])
    assert s.name == "subsidy_yuan_per_kwh"


def test_rate_series_uses_local_date(literal):
    """2025-03-31 16:00 UTC is 2025-04-01 00:00 in Changzhou: inside the window."""
    i = pd.DatetimeIndex([pd.Timestamp("2025-03-31 16:00", tz="UTC")])
    assert subsidy_rate_series(literal, 2000.0, D(2025, 3, 17), i).iloc[0] == 0.3


def test_ineligible_site_earns_nothing(literal):
    i = idx("2025-06-01 12:00", "2026-06-01 12:00")
    s = subsidy_rate_series(literal, 490.0, D(2025, 3, 17), i)
    assert s.sum() == 0.0


def test_configurable_rate(literal):
    i = idx("2025-06-01 12:00")
    assert subsidy_rate_series(literal, 2000.0, D(2025, 3, 17), i, 0.2).iloc[0] == 0.2
    assert subsidy_rate_series(literal, 2000.0, D(2025, 3, 17), i, 0.0).iloc[0] == 0.0


def test_peak_flat_rule_pays_peak_critical_and_flat_only(catalog):
    """The shipped rule: valley and deep-valley discharge earn nothing, the rest 0.3."""
    i = idx("2025-06-01 03:00", "2025-06-01 08:00", "2025-06-01 15:00", "2025-07-01 14:00",
            "2025-10-02 12:00")
    periods = np.array(["valley", "flat", "peak", "critical_peak", "deep_valley"], dtype=object)
    s = subsidy_rate_series(catalog.policy, 2000.0, D(2025, 3, 17), i, periods=periods)
    np.testing.assert_array_equal(s.to_numpy(), [0.0, 0.3, 0.3, 0.3, 0.0])
    with pytest.raises(InvalidInputError, match="peak_flat subsidy rule needs each interval"):
        subsidy_rate_series(catalog.policy, 2000.0, D(2025, 3, 17), i)


@pytest.mark.parametrize("rate", [0.35, -0.1])
def test_rate_above_policy_cap_rejected(catalog, rate):
    with pytest.raises(InvalidInputError, match=rf"subsidy_rate_yuan_per_kwh={rate}: allowed "
                                                 r"range \[0, 0.3\]"):
        subsidy_rate_series(catalog.policy, 2000.0, D(2025, 3, 17), idx("2025-06-01"), rate)


def test_naive_index_rejected(catalog):
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        subsidy_rate_series(catalog.policy, 2000.0, D(2025, 3, 17),
                            pd.DatetimeIndex([pd.Timestamp("2025-06-01")]))


def raw() -> dict:
    path = PACKAGE_DATA / "policies" / "changzhou-storage-subsidy-2024.toml"
    return tomllib.loads(path.read_text())


def test_shipped_policy():
    p = parse_policy(raw())
    assert (p.min_power_kw, p.rate_yuan_per_kwh, p.duration_months) == (500.0, 0.3, 24)
    assert p.rule == "peak_flat" and "interpretation" in p.rule_source


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"rate_yuan_per_kwh": 0.5}, r"rate_yuan_per_kwh=0.5: allowed range \[0, 0.3\]"),
        ({"duration_months": 0}, r"duration_months=0: need a whole number > 0"),
        ({"min_power_kw": -1}, r"min_power_kw=-1"),
        ({"start": "on-connection"}, r"start='on-connection': only 'first-day-of-next-month'"),
        ({"source": None}, r"source missing"),
        ({"counting": {"rule": "every-second-kwh"}}, r"counting.rule='every-second-kwh': "
                                                     r"allowed all, peak_flat"),
        ({"counting": {"rule": "annual_hours_cap", "annual_hours": 9000}},
         r"counting.annual_hours=9000: allowed range \(0, 8760\] h"),
        # found by a user replacing the policy file (each was accepted)
        ({"rate_yuan_per_kwh": 30, "max_rate_yuan_per_kwh": 30},
         r"max_rate_yuan_per_kwh=30: allowed range \[0, 2\] yuan/kWh"),
        ({"end_date": dt.date(2026, 12, 31), "max_total_yuan": 1e6},
         r"unknown key\(s\) end_date, max_total_yuan; allowed"),
        ({"counting": {"rule": "all", "cap": 1}}, r"counting: unknown key\(s\) cap"),
        ({"duration_months": True}, r"duration_months=True: need a whole number > 0"),
        ({"effective_from": "2024-07-11"}, r"effective_from='2024-07-11': write the date "
                                           r"unquoted"),
    ],
)
def test_policy_file_errors(change, match):
    with pytest.raises(InvalidInputError, match=match):
        parse_policy({**raw(), **change})


def _version(**change) -> SubsidyPolicy:
    return dataclasses.replace(parse_policy(raw()), **change)


def test_a_station_is_paid_on_the_version_in_force_on_its_first_paid_day():
    """Two versions: the shipped one (from 2024-07-11: 0.3 yuan/kWh, 24 months, >= 500 kW)
    and one from 2027-01-01 (0.2 yuan/kWh, 12 months, >= 1000 kW). Connected 2026-11-20:
    first paid day 2026-12-01, under the old terms; connected 2026-12-05: first paid day
    2027-01-01, under the new ones (a 700 kW station then earns nothing); connected before
    any version: the first one."""
    old = parse_policy(raw())
    new = _version(version="v2027", effective_from=D(2027, 1, 1), rate_yuan_per_kwh=0.2,
                   duration_months=12, min_power_kw=1000.0)
    book = PolicyBook([new, old])  # any order
    assert book.versions == [old, new] and book.latest is new
    assert book.for_connection(D(2026, 11, 20)) is old
    assert book.for_connection(D(2026, 12, 5)) is new
    assert book.for_connection(D(2020, 1, 1)) is old
    assert book.for_connection(None) is new
    assert subsidy_window(book.for_connection(D(2026, 12, 5)), 2000.0, D(2026, 12, 5)) == (
        D(2027, 1, 1), D(2027, 12, 31))
    assert subsidy_window(book.for_connection(D(2026, 12, 5)), 700.0, D(2026, 12, 5)) is None
    rates = subsidy_rate_series(book.for_connection(D(2026, 12, 5)), 2000.0, D(2026, 12, 5),
                                idx("2026-12-31 10:00", "2027-01-01 10:00", "2028-01-01 10:00"),
                                periods=np.array(["flat"] * 3))
    assert rates.tolist() == [0.0, 0.2, 0.0]


def test_policy_versions_are_files_in_the_data_folder(tmp_path):
    """A second policy file beside the shipped one is a new version: a copy of CZ-MG-04
    connected 2027-03-10 is paid 0.2 yuan/kWh for 12 months from 2027-04-01, CZ-MG-04
    itself (connected 2026-07-08) keeps its 24 months at 0.3; two files from the same day
    are refused, naming both."""
    data = tmp_path / "data"
    shutil.copytree(PACKAGE_DATA, data)
    shipped = (data / DEFAULT_POLICY).read_text(encoding="utf-8")
    v2 = (shipped.replace('version = "changzhengbanfa-2024-32"', 'version = "v2027"')
          .replace("effective_from = 2024-07-11", "effective_from = 2027-01-01")
          .replace("rate_yuan_per_kwh = 0.3", "rate_yuan_per_kwh = 0.2")
          .replace("duration_months = 24", "duration_months = 12"))
    (data / "policies" / "changzhou-storage-subsidy-2027.toml").write_text(v2, "utf-8")
    cat = Catalog.load(data)
    site = cat.fleet.site("CZ-MG-04")
    later = site.model_copy(update={"storage": site.storage.model_copy(
        update={"grid_connection_date": D(2027, 3, 10)})})
    assert cat.policy_for(site).version == "changzhengbanfa-2024-32"
    assert cat.policy_for(later).version == "v2027"
    assert subsidy_window(cat.policy_for(later), 1000.0, D(2027, 3, 10)) == (
        D(2027, 4, 1), D(2028, 3, 31))
    assert subsidy_window(cat.policy_for(site), 1000.0, D(2026, 7, 8)) == (
        D(2026, 8, 1), D(2028, 7, 31))
    (data / "policies" / "copy.toml").write_text(v2.replace('"v2027"', '"v2027b"'), "utf-8")
    with pytest.raises(InvalidInputError, match=r"changzhou-storage-subsidy-2027.toml and "
                       r"copy.toml: both are subsidy policy versions from 2027-01-01"):
        Catalog.load(data)


def test_no_subsidy_before_the_policy_took_effect(catalog):
    """CZ-MG-06 (5 MW, connected 2024-03-05) on 2024-05-15, before 常政办发〔2024〕32号 took
    effect on 2024-07-11: its plan earns nothing (it earned 6,000 yuan, 20,000 kWh x 0.3,
    before the policy's date was read); on 2024-07-15 it earns the rate again."""
    from vpp.planning import plan_site

    before = plan_site(catalog, "CZ-MG-06", D(2024, 5, 15))
    after = plan_site(catalog, "CZ-MG-06", D(2024, 7, 15))
    assert before["kpis"]["subsidy_yuan"] == 0.0
    assert before["parameters"]["subsidy"]["window"]["first_paid_day"] == "2024-07-11"
    assert after["kpis"]["subsidy_yuan"] > 1000.0
