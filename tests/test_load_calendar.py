"""Load archetypes on the Chinese work calendar, and meter CSV import."""

from __future__ import annotations

import datetime as dt
import io

import pandas as pd
import pytest

from forecasts.calendar import day_kind
from forecasts.load import LoadShape, archetype_profile, read_meter_csv

D = dt.date


@pytest.mark.parametrize(
    ("day", "workday", "holiday"),
    [
        (D(2026, 7, 15), True, None),  # Wednesday
        (D(2026, 7, 18), False, None),  # Saturday
        (D(2026, 10, 1), False, "National Day"),  # Thursday, holiday
        (D(2026, 9, 20), True, None),  # Sunday, make-up working day (调休) for National Day
        (D(2026, 2, 14), True, None),  # Saturday, make-up day for the Spring Festival
        (D(2026, 5, 1), False, "Labour Day"),
        (D(2031, 3, 3), True, None),  # beyond the package's data: Monday-Friday fallback
        (D(2031, 3, 2), False, None),
    ],
)
def test_day_kind(day, workday, holiday):
    assert day_kind(day) == (workday, holiday)


def one_day(date: str) -> pd.DatetimeIndex:
    return pd.date_range(pd.Timestamp(date).tz_localize("Asia/Shanghai"), periods=96,
                         freq="15min")


def test_two_shift_value_by_hand(catalog):
    """Interval 10:00-10:15 has its midpoint at 10.125 h, between the hour midpoints 9.5 h
    (0.97) and 10.5 h (1.00): 0.97 + 0.625 x 0.03 = 0.98875; x July factor 1.00 x 5200 kW
    = 5141.5 kW on a working day. On a Saturday: 0.38 x 5200 = 1976 kW."""
    shape = catalog.archetypes["two_shift"]
    wd = archetype_profile(shape, 5200.0, one_day("2026-07-15"))
    assert wd.iloc[40] == pytest.approx(5141.5, abs=1e-9)
    sat = archetype_profile(shape, 5200.0, one_day("2026-07-18"))
    assert sat.iloc[40] == pytest.approx(0.38 * 5200, abs=1e-9)


def test_make_up_day_and_holiday_shapes(catalog):
    shape = catalog.archetypes["two_shift"]
    makeup = archetype_profile(shape, 1000.0, one_day("2026-09-20"))  # Sunday, worked
    workday = archetype_profile(shape, 1000.0, one_day("2026-09-21"))  # Monday
    holiday = archetype_profile(shape, 1000.0, one_day("2026-10-01"))  # Thursday, off
    saturday = archetype_profile(shape, 1000.0, one_day("2026-09-19"))
    assert makeup.to_numpy() == pytest.approx(workday.to_numpy())
    # September factor 0.97 vs October 0.95 on the non-working shape
    assert holiday.to_numpy() / 0.95 == pytest.approx(saturday.to_numpy() / 0.97)


def test_profile_needs_tz(catalog):
    with pytest.raises(ValueError, match="timezone-aware"):
        archetype_profile(catalog.archetypes["two_shift"], 1.0,
                          pd.date_range("2026-07-15", periods=4, freq="15min"))


def test_bad_shape_rejected():
    with pytest.raises(ValueError, match=r"load shape x.workday: need 24 values in \[0, 1.5\], "
                                         r"got 23"):
        LoadShape("x", (0.5,) * 23, (0.5,) * 24, (1.0,) * 12)


def test_meter_csv_naive_timestamps_are_local():
    text = "timestamp,load_kw\n2026-07-15 00:00,100\n2026-07-15 00:15,110.5\n"
    s = read_meter_csv(io.StringIO(text))
    assert list(s) == [100.0, 110.5]
    assert str(s.index.tz) == "Asia/Shanghai"
    assert s.index[0] == pd.Timestamp("2026-07-14 16:00", tz="UTC")


def test_meter_csv_with_offset():
    text = "timestamp,load_kw\n2026-07-14T16:00:00Z,100\n2026-07-14T16:15:00Z,90\n"
    s = read_meter_csv(io.StringIO(text))
    assert s.index[0].strftime("%Y-%m-%d %H:%M") == "2026-07-15 00:00"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("time,kw\n2026-07-15 00:00,1\n", r"missing columns \['timestamp', 'load_kw'\]; found "
                                           r"\['time', 'kw'\]"),
        ("timestamp,load_kw\n2026-07-15 00:00,1\n2026-07-15 00:30,1\n",
         r"rows must be 15 minutes apart; line 3 follows after 30 min"),
        ("timestamp,load_kw\n2026-07-15 00:00,-5\n", r"load_kw must be >= 0 kW, minimum is -5"),
        ("timestamp,load_kw\n2026-07-15 00:00,abc\n", r"1 missing or non-numeric load_kw"),
        ("timestamp,load_kw\nyesterday,1\n", r"'timestamp': 1 value\(s\) are not ISO 8601 "
                                               r"times .*first 'yesterday' \(line 2\)"),
        # a naive time among times with offsets was read as UTC: 8 hours off, no word
        ("timestamp,load_kw\n2026-07-15T00:00+08:00,1\n2026-07-15 00:15,1\n",
         r"mixes times with and without a UTC offset \(first without: '2026-07-15 00:15' on "
         r"line 3\)"),
    ],
)
def test_meter_csv_errors(text, match):
    with pytest.raises(ValueError, match=match):
        read_meter_csv(io.StringIO(text))


def test_a_year_without_holiday_data_warns_once_not_once_a_day(caplog):
    import logging

    from forecasts.calendar import _warn_year

    _warn_year.cache_clear()
    with caplog.at_level(logging.WARNING, logger="forecasts.calendar"):
        kinds = [day_kind(dt.date(2097, 12, d)) for d in range(1, 32)]
    assert [r.getMessage() for r in caplog.records] == [
        "no Chinese holiday data for 2097: using Mon-Fri as working days, no holidays"]
    # 2097-12-01 is a Sunday: Mon-Fri, no holiday names
    assert kinds[0] == (False, None) and kinds[1] == (True, None)
