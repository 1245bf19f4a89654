"""Jiangsu time-of-use prices from the shipped tariff files (periods per 426号 and 555号)."""

from __future__ import annotations

import datetime as dt
import tomllib

import pandas as pd
import pytest

from models.errors import InvalidInputError
from vpp.catalog import PACKAGE_DATA
from vpp.tariffs import parse_tariff, price_series

TID = "jiangsu-ci-two-part-1-10kv"
V426, V555 = "su-fagaijiage-2025-426", "su-fagaijiage-2023-555"


def day(catalog, date: str, kva: float = 1000.0, version: str | None = None) -> pd.DataFrame:
    idx = pd.date_range(pd.Timestamp(date).tz_localize("Asia/Shanghai"), periods=96,
                        freq="15min")
    return price_series(catalog.tariffs, TID, idx, kva, version)


def at(df: pd.DataFrame, hhmm: str) -> tuple[str, float]:
    row = df[df.index.strftime("%H:%M") == hhmm].iloc[0]
    return row["period"], round(float(row["import_price_yuan_per_kwh"]), 6)


# 426号, summer (July): valley 00-06 and 11-13, flat 06-11, 13-14, 22-24, peak 14-22;
# critical peak (>= 315 kVA) in July-August 14-15 and 19:30-21:30 at peak x 1.2 = 1.164.
SUMMER_426 = [
    ("00:00", "valley", 0.39), ("05:45", "valley", 0.39), ("06:00", "flat", 0.65),
    ("10:45", "flat", 0.65), ("11:00", "valley", 0.39), ("12:45", "valley", 0.39),
    ("13:00", "flat", 0.65), ("14:00", "critical_peak", 1.164), ("14:45", "critical_peak", 1.164),
    ("15:00", "peak", 0.97), ("19:15", "peak", 0.97), ("19:30", "critical_peak", 1.164),
    ("21:15", "critical_peak", 1.164), ("21:30", "peak", 0.97), ("22:00", "flat", 0.65),
    ("23:45", "flat", 0.65),
]


@pytest.mark.parametrize(("hhmm", "period", "price"), SUMMER_426)
def test_summer_day_426(catalog, hhmm, period, price):
    assert at(day(catalog, "2026-07-15"), hhmm) == (period, price)


def test_no_critical_peak_below_315_kva(catalog):
    df = day(catalog, "2026-07-15", kva=200.0)
    assert at(df, "14:00") == ("peak", 0.97)
    assert at(df, "19:30") == ("peak", 0.97)
    assert "critical_peak" not in set(df["period"])


def test_daily_hours_per_period_426_summer(catalog):
    """Valley 6 + 2 = 8 h, flat 5 + 1 + 2 = 8 h, peak 8 h of which 3 h critical."""
    hours = day(catalog, "2026-07-15")["period"].value_counts() / 4
    assert hours.to_dict() == {"valley": 8.0, "flat": 8.0, "peak": 5.0, "critical_peak": 3.0}


# 426号, spring-autumn (April): flat 00-02, 06-10, 14-15, 22-24; valley 02-06 and 10-14;
# peak 15-22; no critical peak in April.
SPRING_426 = [
    ("00:00", "flat", 0.65), ("01:45", "flat", 0.65), ("02:00", "valley", 0.39),
    ("06:00", "flat", 0.65), ("10:00", "valley", 0.39), ("13:45", "valley", 0.39),
    ("14:00", "flat", 0.65), ("15:00", "peak", 0.97), ("21:45", "peak", 0.97),
    ("22:00", "flat", 0.65),
]


@pytest.mark.parametrize(("hhmm", "period", "price"), SPRING_426)
def test_spring_day_426(catalog, hhmm, period, price):
    assert at(day(catalog, "2026-04-15"), hhmm) == (period, price)


def test_season_boundary_31_may_to_1_june(catalog):
    """10:00 is valley on 31 May (spring-autumn midday valley) and flat on 1 June (summer)."""
    idx = pd.date_range(pd.Timestamp("2026-05-31").tz_localize("Asia/Shanghai"), periods=192,
                        freq="15min")
    df = price_series(catalog.tariffs, TID, idx, 1000.0)
    assert df.loc["2026-05-31 10:00+08:00", "period"] == "valley"
    assert df.loc["2026-06-01 10:00+08:00", "period"] == "flat"
    assert df.loc["2026-06-01 11:00+08:00", "period"] == "valley"


def test_policy_switch_on_1_june_2025(catalog):
    """555号 (peak 08-11 at 1.1275) applies until 31 May 2025, 426号 (flat at 08:00) after."""
    idx = pd.date_range(pd.Timestamp("2025-05-31").tz_localize("Asia/Shanghai"), periods=192,
                        freq="15min")
    df = price_series(catalog.tariffs, TID, idx, 1000.0)
    assert df.loc["2025-05-31 08:00+08:00", "tariff_version"] == V555
    assert df.loc["2025-05-31 08:00+08:00", "import_price_yuan_per_kwh"] == 1.1275
    assert df.loc["2025-06-01 08:00+08:00", "tariff_version"] == V426
    assert df.loc["2025-06-01 08:00+08:00", "import_price_yuan_per_kwh"] == 0.65


# 555号 all year: valley 00-08, peak 08-11 and 17-22, flat 11-17 and 22-24; critical peak in
# July-August 14-15 and 20-21 at 1.1275 x 1.2 = 1.353.
SUMMER_555 = [
    ("07:45", "valley", 0.2744), ("08:00", "peak", 1.1275), ("11:00", "flat", 0.6557),
    ("14:00", "critical_peak", 1.353), ("15:00", "flat", 0.6557), ("17:00", "peak", 1.1275),
    ("20:00", "critical_peak", 1.353), ("21:00", "peak", 1.1275), ("22:00", "flat", 0.6557),
]


@pytest.mark.parametrize(("hhmm", "period", "price"), SUMMER_555)
def test_summer_day_555_forced_version(catalog, hhmm, period, price):
    assert at(day(catalog, "2026-07-15", version=V555), hhmm) == (period, price)


def test_holiday_deep_valley_426(catalog):
    """National Day 2025 (1-8 Oct): 10:00-14:00 at valley x 0.8 = 0.312 under 426号."""
    df = day(catalog, "2025-10-02")
    assert at(df, "09:45") == ("flat", 0.65)
    assert at(df, "10:00") == ("deep_valley", 0.312)
    assert at(df, "13:45") == ("deep_valley", 0.312)
    assert at(df, "14:00") == ("flat", 0.65)
    assert (df["period"] == "deep_valley").sum() == 16
    # 6 Oct is the Mid-autumn Festival inside the one National Day break (the calendar
    # names it apart): deep valley too; it was priced at the ordinary valley 0.39
    assert at(day(catalog, "2025-10-06"), "11:00") == ("deep_valley", 0.312)
    # the first working day after the holiday has the ordinary midday valley, and so has
    # a Mid-autumn Festival alone (2026-09-25, a Friday off)
    assert at(day(catalog, "2025-10-09"), "10:00") == ("valley", 0.39)
    assert at(day(catalog, "2026-09-25"), "11:00") == ("valley", 0.39)
    # 555号 has no deep valley
    assert "deep_valley" not in set(day(catalog, "2025-10-02", version=V555)["period"])


# Spring Festival 2026 (15-23 Feb) under 426号, winter periods: valley 00-06 and 11-13, flat
# 06-11 and 13-14, peak 14-22 (no critical peak in February). The holiday window 10-14 is
# deep valley at 0.39 x 0.8 = 0.312 for users of 315 kVA or more, over the flat hours 10-11
# and 13-14 as well as the valley 11-13; below 315 kVA the day keeps its ordinary periods.
SPRING_FESTIVAL_426 = [
    ("09:45", "flat", 0.65, "flat", 0.65), ("10:00", "deep_valley", 0.312, "flat", 0.65),
    ("10:45", "deep_valley", 0.312, "flat", 0.65), ("11:00", "deep_valley", 0.312, "valley", 0.39),
    ("12:45", "deep_valley", 0.312, "valley", 0.39), ("13:00", "deep_valley", 0.312, "flat", 0.65),
    ("13:45", "deep_valley", 0.312, "flat", 0.65), ("14:00", "peak", 0.97, "peak", 0.97),
    ("18:00", "peak", 0.97, "peak", 0.97),
]


@pytest.mark.parametrize(("hhmm", "period", "price", "small_period", "small_price"),
                         SPRING_FESTIVAL_426)
def test_spring_festival_deep_valley_from_315_kva(catalog, hhmm, period, price, small_period,
                                                   small_price):
    assert at(day(catalog, "2026-02-17", kva=1000.0), hhmm) == (period, price)
    assert at(day(catalog, "2026-02-17", kva=200.0), hhmm) == (small_period, small_price)


def test_critical_peak_in_a_flat_hour_555(catalog):
    """555号's July critical peak 14:00-15:00 lies in its flat hours 11-17 and is priced on
    the peak price, 1.1275 x 1.2 = 1.353 yuan/kWh, between flat quarters at 0.6557."""
    df = day(catalog, "2026-07-15", version=V555)
    assert [at(df, h) for h in ("13:45", "14:00", "14:45", "15:00")] == [
        ("flat", 0.6557), ("critical_peak", 1.353), ("critical_peak", 1.353),
        ("flat", 0.6557)]
    assert at(day(catalog, "2026-07-15", kva=200.0, version=V555), "14:00") == ("flat", 0.6557)


def test_labour_day_deep_valley(catalog):
    assert at(day(catalog, "2026-05-01"), "12:00") == ("deep_valley", 0.312)


def test_export_price(catalog):
    assert set(day(catalog, "2026-07-15")["export_price_yuan_per_kwh"]) == {0.391}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tariff_id": "nope"}, r"tariff_id='nope' unknown; known: jiangsu-ci-two-part-1-10kv"),
        ({"version": "v9"}, r"tariff version 'v9' unknown for jiangsu-ci-two-part-1-10kv"),
        ({"start": "2023-01-01"}, r"no version of tariff .* in force on 2023-01-01: the earliest "
                                  r"starts 2023-07-01"),
        ({"freq": "60min"}, r"period boundary \(19:30\) falls inside a 60-minute interval "
                            r"on 2026-07-15"),
        ({"freq": "45min", "start": "2026-04-15"}, r"period boundary falls inside the "
                                                   r"45-minute interval starting 01:30"),
        ({"tz": None}, r"timezone-aware"),
    ],
)
def test_price_series_errors(catalog, kwargs, match):
    start = kwargs.get("start", "2026-07-15")
    tz = kwargs.get("tz", "Asia/Shanghai")
    idx = pd.date_range(pd.Timestamp(start), periods=24, freq=kwargs.get("freq", "15min"))
    if tz:
        idx = idx.tz_localize(tz)
    with pytest.raises(InvalidInputError, match=match):
        price_series(catalog.tariffs, kwargs.get("tariff_id", TID), idx, 1000.0,
                     kwargs.get("version"))


def test_hourly_prices_where_boundaries_allow(catalog):
    """Spring-autumn 426号 periods all change on the hour, so hourly prices are exact."""
    idx = pd.date_range(pd.Timestamp("2026-04-15").tz_localize("Asia/Shanghai"), periods=24,
                        freq="60min")
    df = price_series(catalog.tariffs, TID, idx, 1000.0)
    assert (df["period"] == "valley").sum() == 8 and (df["period"] == "peak").sum() == 7


def raw_426() -> dict:
    return tomllib.loads((PACKAGE_DATA / "tariffs" / "jiangsu-ci-2025-426.toml").read_text())


def test_shipped_tariff_parses():
    t = parse_tariff(raw_426())
    assert t.effective_from == dt.date(2025, 6, 1)
    assert t.prices_yuan_per_kwh == {"peak": 0.97, "flat": 0.65, "valley": 0.39}


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d["seasons"][0].update(peak=["13:00-22:00"]), r"overlaps another period"),
        (lambda d: d["seasons"][1].update(months=[3, 4, 5, 9, 10]), r"do not cover months \[11\]"),
        (lambda d: d["prices_yuan_per_kwh"].update(peak=-1), r"prices_yuan_per_kwh.peak=-1"),
        (lambda d: d.pop("effective_from"), r"effective_from missing"),
        (lambda d: d["seasons"][0].update(valley=["00:00-06:00", "11:00-1300"]),
         r"'11:00-1300' is not 'HH:MM-HH:MM'"),
        (lambda d: d["holiday_deep_valley"].update(min_transformer_kva=-1),
         r"holiday_deep_valley.min_transformer_kva=-1: need a number >= 0 \[kVA\]"),
        (lambda d: d["critical_peak"].update(min_transformer_kva="315"),
         r"critical_peak.min_transformer_kva='315': need a number >= 0"),
        # found by a user replacing the data files (each was accepted, or a traceback)
        (lambda d: d.update(prices_yuan_per_kwh=0.65),
         r"prices_yuan_per_kwh must be a table \(\[prices_yuan_per_kwh\]\), got 0.65"),
        (lambda d: d["critical_peak"].update(multiplier=-1.2),
         r"critical_peak.multiplier=-1.2: allowed range \[1, 3\] \(of the peak price\)"),
        (lambda d: d["holiday_deep_valley"].update(multiplier=1.5),
         r"holiday_deep_valley.multiplier=1.5: allowed range \[0, 1\] \(of the valley"),
        (lambda d: d["export"].update(price_yuan_per_kwh=-0.5),
         r"export.price_yuan_per_kwh=-0.5: allowed range \[0, 5\] yuan/kWh"),
        (lambda d: d["prices_yuan_per_kwh"].update(peak=97.0),
         r"prices_yuan_per_kwh.peak=97.0: allowed range \[0, 5\] yuan/kWh"),
        (lambda d: d.update(effective_to=dt.date(2025, 12, 31)),
         r"unknown key\(s\) effective_to; allowed"),
        (lambda d: d["prices_yuan_per_kwh"].update(sharp=2.0),
         r"prices_yuan_per_kwh: unknown key\(s\) sharp"),
        (lambda d: d["seasons"][0].update(valey=d["seasons"][0].pop("valley")),
         r"seasons\[0\] \(summer-winter\): unknown key\(s\) valey"),
        (lambda d: d["seasons"][1].update(months=[3, 4, 5, 9, 10, 11, 13]),
         r"seasons\[1\] \(spring-autumn\): months contains 13: allowed whole numbers 1-12"),
        (lambda d: d["seasons"][1].update(months=[3, 4, 5, 9, 10, "11"]),
         r"months contains '11'"),
        (lambda d: d["critical_peak"]["windows"][0].update(months=[7, 8, 14]),
         r"critical_peak.windows\[0\]: months contains 14"),
        (lambda d: d["holiday_deep_valley"].update(holidays=["Spring festival", "国庆节"]),
         r"holidays contains 'Spring festival': allowed New Year's Day, Spring Festival"),
        (lambda d: d.update(effective_from="2025-06-01"),
         r"effective_from='2025-06-01': write the date unquoted"),
        (lambda d: d["basic_charge"].update(demand_yuan_per_kw_month=4000),
         r"demand_yuan_per_kw_month=4000: allowed range \[0, 200\] yuan/\(kW·month\)"),
    ],
)
def test_tariff_file_errors(mutate, match):
    data = raw_426()
    mutate(data)
    with pytest.raises(InvalidInputError, match=match):
        parse_tariff(data)


def test_a_section_that_is_not_a_table_is_one_problem():
    """``prices_yuan_per_kwh = 0.65`` (or ``basic_charge = 40``) is named once, not again as
    three missing prices."""
    for key, value in (("prices_yuan_per_kwh", 0.65), ("basic_charge", 40)):
        data = raw_426()
        data[key] = value
        with pytest.raises(InvalidInputError) as err:
            parse_tariff(data)
        assert err.value.problems == [f"tariff: {key} must be a table ([{key}]), got {value}"]


def test_two_files_of_one_tariff_on_the_same_day_are_refused(tmp_path):
    """A copy of the 426 file under another version name but the same effective date: which
    one applies would depend on the file names, so both files are named in the error."""
    from vpp.tariffs import TariffBook

    src = (PACKAGE_DATA / "tariffs" / "jiangsu-ci-2025-426.toml").read_text(encoding="utf-8")
    (tmp_path / "a-426.toml").write_text(src, encoding="utf-8")
    (tmp_path / "b-copy.toml").write_text(src.replace('version = "su-fagaijiage-2025-426"',
                                                      'version = "other"'), encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"a-426.toml and b-copy.toml: both are tariff "
                       r"jiangsu-ci-two-part-1-10kv with effective_from 2025-06-01"):
        TariffBook.from_dir(tmp_path)
    (tmp_path / "b-copy.toml").write_text(src, encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"with version su-fagaijiage-2025-426"):
        TariffBook.from_dir(tmp_path)


def test_a_new_version_with_a_misspelt_id_is_named_in_a_warning(tmp_path, caplog):
    """A 2027 version whose id differs from the fleet's by one capital letter is another
    tariff that no site uses: loading warns and names it (plans of 2027 would otherwise keep
    the old prices silently)."""
    import shutil

    from vpp.catalog import Catalog

    data = tmp_path / "data"
    shutil.copytree(PACKAGE_DATA, data)
    src = (data / "tariffs" / "jiangsu-ci-2025-426.toml").read_text(encoding="utf-8")
    (data / "tariffs" / "jiangsu-ci-2027.toml").write_text(
        src.replace('id = "jiangsu-ci-two-part-1-10kv"', 'id = "jiangsu-ci-two-part-1-10kV"')
        .replace('version = "su-fagaijiage-2025-426"', 'version = "agency-2027-01"')
        .replace("effective_from = 2025-06-01", "effective_from = 2027-01-01"),
        encoding="utf-8")
    with caplog.at_level("WARNING", logger="vpp.catalog"):
        Catalog.load(data)
    assert "jiangsu-ci-two-part-1-10kV" in caplog.text and "used by no site" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="vpp.catalog"):
        Catalog.load(PACKAGE_DATA)
    assert "used by no site" not in caplog.text
