"""Time columns of the CSV readers: one set of names, daylight saving made explicit, and the
measured-power reader's start / end / instant conventions."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from forecasts.calibration import read_power_csv
from forecasts.timestamps import TIMESTAMP_NAMES, parse_times, timestamp_column
from forecasts.weather import read_weather_csv

NY = "America/New_York"
# 2026-11-01: New York clocks go back at 02:00 EDT, so 01:00-01:59 happens twice
FALL = ["2026-11-01 00:00", "2026-11-01 00:30", "2026-11-01 01:00", "2026-11-01 01:30",
        "2026-11-01 01:00", "2026-11-01 01:30", "2026-11-01 02:00"]
# 2026-03-08: clocks go forward at 02:00 EST, so 02:00-02:59 does not exist
SPRING = ["2026-03-08 01:30", "2026-03-08 02:00", "2026-03-08 02:30", "2026-03-08 03:00"]


def csv(header: str, times: list[str], value: str = "1") -> io.StringIO:
    buf = io.StringIO(header + "\n" + "".join(f"{t},{value}\n" for t in times))
    buf.name = "x.csv"
    return buf


def test_ambiguous_local_times_are_an_error_naming_file_column_and_line():
    # header on line 1, so the first repeated time (01:00, third row) is on line 4
    with pytest.raises(ValueError, match=r"weather CSV x\.csv: column 'time': 4 local time\(s\) "
                                         r"occur twice in America/New_York \(clocks go back\), "
                                         r"first '2026-11-01 01:00' on line 4; .*ambiguous = "
                                         r"earlier \| later \| infer \| drop"):
        read_weather_csv(csv("time,ghi", FALL, "0"), tz=NY)


def test_ambiguous_policies():
    utc = {a: parse_times(FALL, NY, "f", ambiguous=a)[0].tz_convert("UTC").strftime("%H:%M")
           .tolist() for a in ("earlier", "later", "infer")}
    # infer: the first 01:00/01:30 are EDT (UTC-4), the second EST (UTC-5): every row 30 min on
    assert utc["infer"] == ["04:00", "04:30", "05:00", "05:30", "06:00", "06:30", "07:00"]
    assert utc["earlier"] == ["04:00", "04:30", "05:00", "05:30", "05:00", "05:30", "07:00"]
    assert utc["later"] == ["04:00", "04:30", "06:00", "06:30", "06:00", "06:30", "07:00"]
    idx, keep = parse_times(FALL, NY, "f", ambiguous="drop")
    assert list(keep) == [True, True, False, False, False, False, True] and len(idx) == 3
    with pytest.raises(ValueError, match=r"cannot infer which occurrence .* \(first "
                                         r"'2026-11-01 01:00' on line 2"):
        parse_times(FALL[2:4], NY, "f", ambiguous="infer")


def test_nonexistent_local_times():
    with pytest.raises(ValueError, match=r"power CSV x\.csv: column 'timestamp': 2 local "
                                         r"time\(s\) do not exist in America/New_York \(clocks "
                                         r"go forward\), first '2026-03-08 02:00' on line 3"):
        read_power_csv(csv("timestamp,ac_power_kw", SPRING), tz=NY)
    idx, keep = parse_times(SPRING, NY, "f", nonexistent="drop")
    assert idx.strftime("%H:%M%z").tolist() == ["01:30-0500", "03:00-0400"]
    assert list(keep) == [True, False, False, True]
    fwd, _ = parse_times(SPRING, NY, "f", nonexistent="shift_forward")
    assert fwd.strftime("%H:%M").tolist() == ["01:30", "03:00", "03:00", "03:00"]
    with pytest.raises(ValueError, match="nonexistent must be one of"):
        parse_times(SPRING, NY, "f", nonexistent="ignore")
    with pytest.raises(ValueError, match="ambiguous must be one of"):
        parse_times(SPRING, NY, "f", ambiguous="first")


def test_offsets_and_zones_without_dst_need_no_policy():
    idx, _ = parse_times(["2026-11-01T01:00-04:00", "2026-11-01T01:00-05:00"], NY, "f")
    assert (idx[1] - idx[0]) == pd.Timedelta(hours=1)
    idx, _ = parse_times(FALL, "Asia/Shanghai", "f")  # no daylight saving time in China
    assert len(idx) == 7
    # the bad value and its line, not pandas' advice on format= arguments
    with pytest.raises(ValueError, match=r"f: column 'timestamp': 2 value\(s\) are not ISO "
                                         r"8601 times .*, first '0x:30' \(lines 3, 4\)$"):
        parse_times(["2026-07-15 00:00", "0x:30", "yesterday"], NY, "f")


def test_one_set_of_time_column_names():
    assert timestamp_column(["Time", "ghi"], "f") == "Time"
    assert timestamp_column(["measured_on", "ac_power_2"], "f") == "measured_on"
    with pytest.raises(ValueError, match=r"f: no time column; accepted names \['timestamp', "
                                         r"'time', 'datetime', 'date_time', 'measured_on', "
                                         r"'ts'\], found \['when'\]"):
        timestamp_column(["when"], "f")
    # the weather reader and the power reader accept the same headers
    times = ["2026-07-15 12:00", "2026-07-15 12:15"]
    for name in TIMESTAMP_NAMES:
        assert len(read_weather_csv(csv(f"{name},ghi", times, "100")).frame) == 2
        assert len(read_power_csv(csv(f"{name},ac_power_kw", times))) == 2


def test_power_csv_missing_columns_and_coarse_rows():
    with pytest.raises(ValueError, match=r"power CSV x\.csv: missing columns \['timestamp', "
                                         r"'ac_power_kw'\]; found \['when', 'kw'\] \(time "
                                         r"column: any of \['timestamp', 'time'"):
        read_power_csv(csv("when,kw", ["2026-07-15 12:00"]))
    with pytest.raises(ValueError, match=r"rows are 0 days 01:00:00 apart; measured power must "
                                         r"be at 15 minutes or finer"):
        read_power_csv(csv("time,ac_power_kw", ["2026-07-15 12:00", "2026-07-15 13:00"]))


def test_power_labels_start_end_instant_by_hand():
    def read(label, times, values, step="15min"):
        text = "time,p\n" + "".join(f"{t},{v}\n" for t, v in zip(times, values, strict=True))
        return read_power_csv(io.StringIO(text), "p", "kW", label)

    t15 = ["2026-07-15 12:00", "2026-07-15 12:15", "2026-07-15 12:30"]
    s = read("start", t15, [1, 3, 5])
    assert s.index[0].strftime("%H:%M") == "12:00" and list(s) == [1, 3, 5]
    e = read("end", t15, [1, 3, 5])  # the 12:15 row is the average over 12:00-12:15
    assert e.index[0].strftime("%H:%M") == "11:45" and list(e) == [1, 3, 5]
    # 15-minute instant samples: each interval the mean of its two ends
    i = read("instant", t15, [1, 3, 5])
    assert list(i.iloc[:2]) == [2.0, 4.0] and np.isnan(i.iloc[2])
    # 5-minute instant samples: averaged into the interval that holds them
    t5 = [f"2026-07-15 12:{m:02d}" for m in range(0, 30, 5)]
    i5 = read("instant", t5, [1, 2, 3, 4, 5, 6])
    assert list(i5) == [2.0, 5.0] and i5.index[1].strftime("%H:%M") == "12:15"


def test_power_csv_bad_values_are_named_by_line():
    """Text, infinite values, values above the limit (a logger in W read as kW) and one time
    twice with two values are errors naming the lines (the header is line 1); the same time
    twice with one value is kept once."""
    rows = ["timestamp,ac_power_kw", "2025-06-01 10:00,10", "2025-06-01 10:15,abc",
            "2025-06-01 10:30,inf", "2025-06-01 10:45,9000", '2025-06-01 11:00,"1,234.5"']
    with pytest.raises(ValueError) as e:
        read_power_csv(io.StringIO("\n".join(rows) + "\n"), max_kw=150.0)
    assert str(e.value).split(">: ", 1)[1] == (
        "'ac_power_kw' is not a number on lines 3, 6 (an empty "
        "cell is a gap; decimal point, no thousands separator); 'ac_power_kw' is infinite on "
        "line 4; 'ac_power_kw' above 150 kW on line 5 (1.5 x the AC rating; a value in W? "
        "give --unit W)")
    clash = "timestamp,ac_power_kw\n2025-06-01 10:00,10\n2025-06-01 10:15,11\n" \
            "2025-06-01 10:15,12\n2025-06-01 10:30,13\n"
    with pytest.raises(ValueError, match=r"1 timestamp\(s\) appear twice with different values, "
                                         r"first 2025-06-01 10:15 \(lines 3, 4\)"):
        read_power_csv(io.StringIO(clash))
    same = clash.replace("10:15,12", "10:15,11")
    assert read_power_csv(io.StringIO(same)).tolist() == [10.0, 11.0, 13.0]
    with pytest.raises(ValueError, match="the file is empty"):
        read_power_csv(io.StringIO(""))


def test_measured_power_on_another_clock_is_named():
    """Local PV stamped as UTC lands 8 hours late, 62 % of its energy at night: the
    calibration stops and says the stamps fit best 8 h earlier."""
    from forecasts.calibration import check_time_zone

    idx = pd.date_range("2025-06-01", periods=96 * 3, freq="15min", tz="Asia/Shanghai")
    h = idx.hour + idx.minute / 60 + 0.125
    clear = pd.Series(np.clip(np.sin(np.pi * (h - 6) / 12), 0, None) * 100.0, index=idx)
    late = pd.Series(np.roll(clear.to_numpy(), 32), index=idx)
    check_time_zone(clear, clear, clear)  # on the site's clock: no error
    with pytest.raises(ValueError, match=r"of the measured energy falls at night .* fit best "
                                         r"8 h earlier"):
        check_time_zone(late, clear, clear)


def test_weather_in_kw_per_m2_or_with_diffuse_above_global_is_refused():
    idx = pd.date_range("2025-06-01", periods=96, freq="15min")
    h = idx.hour + idx.minute / 60
    ghi = np.clip(np.sin(np.pi * (h - 6) / 12), 0, None) * 0.9  # kW/m²: 0.9 at noon
    text = pd.DataFrame({"timestamp": idx.strftime("%Y-%m-%d %H:%M"), "ghi": ghi}).to_csv(
        index=False)
    with pytest.raises(ValueError, match=r"'ghi' is at most 0.9 over 2025-06-01 00:00 \.\. "
                                         r"2025-06-01 23:45: irradiance is in W/m²"):
        read_weather_csv(io.StringIO(text), "Asia/Shanghai")
    frame = pd.DataFrame({"timestamp": idx.strftime("%Y-%m-%d %H:%M"), "ghi": ghi * 1000,
                          "dni": 0.0, "dhi": ghi * 1000})
    frame.loc[48, "dhi"] = 900.0  # 12:00: ghi 900 x sin(pi/2) ... 900 is not above
    frame.loc[40, "dhi"] = 900.0  # 10:00: ghi 779.4
    frame.loc[40, "ghi"] = 100.0
    with pytest.raises(ValueError, match=r"'dhi' above 'ghi' in 1 row\(s\), first at "
                                         r"2025-06-01 10:00:00\+08:00 \(dhi 900, ghi 100"):
        read_weather_csv(io.StringIO(frame.to_csv(index=False)), "Asia/Shanghai")
