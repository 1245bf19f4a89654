"""Similar-day load forecast on the Chinese work calendar, and its backtest."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest

from forecasts.backtest import load_backtest
from forecasts.load import day_class, forecast_load

LEVEL = {"workday": 100.0, "rest": 50.0, "holiday": 20.0}


def history(first: str, last: str) -> pd.Series:
    """Flat load by day class: 100 kW on working days, 50 on weekends, 20 on holidays."""
    idx = pd.date_range(pd.Timestamp(first, tz="Asia/Shanghai"),
                        pd.Timestamp(last, tz="Asia/Shanghai") + pd.Timedelta(days=1),
                        freq="15min", inclusive="left")
    return pd.Series([LEVEL[day_class(d)] for d in idx.date], index=idx)


def day(date: str) -> pd.DatetimeIndex:
    return pd.date_range(pd.Timestamp(date, tz="Asia/Shanghai"), periods=96, freq="15min")


def test_day_classes_follow_the_state_council_calendar():
    assert day_class(dt.date(2025, 9, 28)) == "workday"  # Sunday, make-up day for National Day
    assert day_class(dt.date(2025, 10, 1)) == "holiday"
    assert day_class(dt.date(2025, 9, 27)) == "rest"  # Saturday
    assert day_class(dt.date(2025, 10, 11)) == "workday"  # Saturday, make-up day


def test_make_up_sunday_is_forecast_as_a_working_day():
    h = history("2025-08-25", "2025-09-27")
    assert forecast_load(h, day("2025-09-28")).to_numpy() == pytest.approx(np.full(96, 100.0))


def test_holiday_without_recent_holidays_borrows_the_weekend_then_learns():
    """No statutory holiday in the 4 weeks before 1 October 2025: the weekend level (50 kW)
    stands in. With 1-3 October in the history, 4 October is forecast at the holiday level."""
    assert forecast_load(history("2025-08-25", "2025-09-30"), day("2025-10-01")).iloc[0] == 50
    assert forecast_load(history("2025-08-25", "2025-10-03"), day("2025-10-04")).iloc[0] == 20


def test_profile_is_the_slot_mean_of_similar_days():
    """Two working days in history, 80 and 120 kW at 09:00: the forecast at 09:00 is 100."""
    h = history("2026-03-02", "2026-03-03")  # Monday, Tuesday
    h[h.index.hour == 9] = np.where(h[h.index.hour == 9].index.day == 2, 80.0, 120.0)
    fc = forecast_load(h, day("2026-03-04"))
    assert fc[fc.index.hour == 9].to_numpy() == pytest.approx(np.full(4, 100.0))
    assert fc[fc.index.hour == 10].iloc[0] == 100.0


def test_backtest_is_exact_on_a_calendar_driven_load_and_counts_holiday_misses():
    """On the load above, every day of the last four weeks before 30 September 2025 is
    predicted exactly (MAPE 0). Testing 1-3 October 2025 adds a miss of 30 kW on a 20 kW
    holiday (150 %) on 1 October only."""
    exact = load_backtest(history("2025-07-01", "2025-09-30"), days=28)
    assert exact.mape == 0.0 and exact.nmae == 0.0 and exact.days == 28
    miss = load_backtest(history("2025-07-01", "2025-10-03"), days=3)
    assert miss.daily["mape"].round(6).tolist() == [1.5, 0.0, 0.0]
    assert miss.nmae == pytest.approx(30 * 96 / (20 * 96 * 3))


def test_empty_history_is_an_error():
    with pytest.raises(ValueError, match="load history is empty"):
        forecast_load(pd.Series(dtype=float), day("2026-03-04"))


def test_history_after_the_forecast_start_is_not_used():
    """A forecast learns only from what was measured before it: October's 500 kW rows do
    not leak into a forecast for 1 October made from a history that runs to 31 October."""
    h = history("2025-08-25", "2025-10-31")
    h[h.index >= pd.Timestamp("2025-10-01", tz="Asia/Shanghai")] = 500.0
    # 1 October is a holiday; the last four weeks before it hold none, so the class borrows
    # from the weekends (50 kW), never October's 500 kW
    assert forecast_load(h, day("2025-10-01")).to_numpy() == pytest.approx(np.full(96, 50.0))
    with pytest.raises(ValueError, match=re.escape(
            "no load history before 2025-08-01 00:00: the history covers 2025-08-25 00:00 .. "
            "2025-10-31 23:45")):
        forecast_load(h, day("2025-08-01"))


def test_history_shorter_than_a_day_is_an_error():
    """50 quarter-hours (00:00-12:15) cannot give a whole day: 46 quarter-hours from 12:30
    on would be blank."""
    h = history("2026-03-02", "2026-03-02").iloc[:50]
    with pytest.raises(ValueError, match="no measurement at 46 of the 96 quarter-hours of a "
                                         r"day \(first 12:30\)"):
        forecast_load(h, day("2026-03-04"))


def test_meter_rows_out_of_range_are_named_by_line(tmp_path):
    from forecasts.load import read_meter_csv

    idx = pd.date_range("2026-03-02", periods=8, freq="15min")
    kw = [1000.0, 1e15, 1000.0, float("inf"), -5.0, 1000.0, 1000.0, 1000.0]
    f = tmp_path / "meter.csv"
    pd.DataFrame({"timestamp": idx.strftime("%Y-%m-%dT%H:%M:%S"), "load_kw": kw}) \
        .to_csv(f, index=False)
    with pytest.raises(ValueError) as e:
        read_meter_csv(f)
    assert str(e.value) == (f"{f}: load_kw must be >= 0 kW, minimum is -5 (line 6); load_kw "
                            "above 10,000,000 kW, the largest a site may have (lines 3, 5; a "
                            "value in W?)")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match=r"empty\.csv: the file is empty"):
        read_meter_csv(tmp_path / "empty.csv")


def test_meter_history_with_missing_rows_reads_as_gaps(tmp_path):
    """A history may miss readings (a whole number of 15-minute steps apart): they come back
    as NaN and the forecast averages what is there; rows out of order or off the 15-minute
    grid stay errors."""
    from forecasts.load import read_meter_csv

    idx = pd.date_range("2026-03-02", periods=6, freq="15min")
    f = tmp_path / "meter.csv"
    pd.DataFrame({"timestamp": idx.strftime("%Y-%m-%dT%H:%M:%S"), "load_kw": range(6)}) \
        .drop(index=[2, 3]).to_csv(f, index=False)
    h = read_meter_csv(f, gaps=True)
    assert len(h) == 6 and h.isna().tolist() == [False, False, True, True, False, False]
    (tmp_path / "blank.csv").write_text("timestamp,load_kw\n2026-03-02T00:00:00,1\n"
                                        "2026-03-02T00:15:00,\n2026-03-02T00:30:00,x\n")
    with pytest.raises(ValueError, match=r"1 non-numeric load_kw values \(line 4\)"):
        read_meter_csv(tmp_path / "blank.csv", gaps=True)  # the empty cell is a gap
    with pytest.raises(ValueError, match="rows must be 15 minutes apart; line 4 follows "
                                         "after 45 min"):
        read_meter_csv(f)
    (tmp_path / "odd.csv").write_text("timestamp,load_kw\n2026-03-02T00:00:00,1\n"
                                      "2026-03-02T00:20:00,1\n")
    with pytest.raises(ValueError, match=r"in time order on 15-minute steps \(gaps allowed\); "
                                         "line 3 follows after 20 min"):
        read_meter_csv(tmp_path / "odd.csv", gaps=True)
