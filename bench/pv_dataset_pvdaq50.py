"""Write ``forecasts/data/pvdaq-50/`` from the data files of the installed ``pvanalytics``.

The files are PVDAQ system 50 (NREL SERF East, Golden, Colorado) inverter ``ac_power_2``,
15-minute AC power 2011-04-15..2013-12-31, and the NSRDB PSM3 30-minute weather for the site
over 2011-2013, as pvanalytics 0.2.2 ships them (``pvanalytics/data/
system_50_ac_power_2_full_DST.parquet`` and ``..._psm3.parquet``, MIT licence). Values are
copied unchanged; the weather's ``index`` column is renamed ``timestamp`` and its calendar
columns (Year, Month, Day, Hour, Minute) are dropped. Needs ``pyarrow`` to read parquet::

    pip install pvanalytics==0.2.2 pyarrow && python bench/pv_dataset_pvdaq50.py
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pvanalytics

SRC = Path(pvanalytics.__file__).parent / "data"
OUT = Path(__file__).resolve().parents[1] / "forecasts" / "data" / "pvdaq-50"


def main() -> None:
    power = pd.read_parquet(SRC / "system_50_ac_power_2_full_DST.parquet")
    power.to_csv(OUT / "ac_power_2.csv.gz", index=False, float_format="%.3f",
                 date_format="%Y-%m-%dT%H:%M:%S%z")
    wx = pd.read_parquet(SRC / "system_50_ac_power_2_full_DST_psm3.parquet")
    wx = wx.drop(columns=["Year", "Month", "Day", "Hour", "Minute"]).rename(
        columns={"index": "timestamp"})
    wx.to_csv(OUT / "psm3_weather.csv.gz", index=False, float_format="%.1f",
              date_format="%Y-%m-%dT%H:%M:%S%z")


if __name__ == "__main__":
    main()
