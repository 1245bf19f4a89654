"""Climatological weather: what the PV chain uses when no weather forecast is given.

GHI = monthly clear-sky index x Ineichen clear-sky GHI (shipped Linke turbidity), DNI and DHI
by decomposition; air temperature = monthly mean + a daily swing peaking at 14:00. The numbers
live in a TOML file (:data:`DEFAULT_FILE`) with their source and effective date, replaceable
without code changes.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from pvlib.location import Location

from forecasts.weather import Decomposition, decompose, interval_clearsky

DEFAULT_FILE = Path(__file__).with_name("data") / "changzhou-climatology.toml"
#: Where the shipped climatology is for [deg north, deg east] (its clear-sky reference).
CLIMATE_SITE = (31.81, 119.97)


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance [km] between two points [deg] (haversine, 6,371 km radius)."""
    p1, p2, dl = np.radians(lat1), np.radians(lat2), np.radians(lon2 - lon1)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return float(2 * 6371.0 * np.arcsin(np.sqrt(a)))


@dataclass(frozen=True)
class Climatology:
    """Monthly clear-sky index [-] and air temperature [°C], January first."""

    name: str
    clearsky_index: tuple[float, ...]
    temp_mean_c: tuple[float, ...]
    temp_swing_c: float
    source: str
    effective: dt.date

    def __post_init__(self) -> None:
        for field, lo, hi in (("clearsky_index", 0.05, 1.0), ("temp_mean_c", -40.0, 45.0)):
            v = getattr(self, field)
            if len(v) != 12 or min(v) < lo or max(v) > hi:
                raise ValueError(f"climatology {self.name}: {field} needs 12 values in "
                                 f"[{lo:g}, {hi:g}], got {list(v)}")
        if not 0 <= self.temp_swing_c <= 20:
            raise ValueError(f"climatology {self.name}: temp_swing_c must be in [0, 20] °C")

    def temp_air(self, index: pd.DatetimeIndex) -> pd.Series:
        """Air temperature [°C] at the midpoints of the 15-minute intervals of ``index``."""
        local = index + pd.Timedelta(minutes=7.5)
        hour = local.hour + local.minute / 60
        mean = np.asarray(self.temp_mean_c)[local.month - 1]
        return pd.Series(mean + self.temp_swing_c * np.cos(2 * np.pi * (hour - 14) / 24),
                         index=index, name="temp_air")


@lru_cache(maxsize=8)
def load_climatology(path: str | Path = DEFAULT_FILE) -> Climatology:
    """Read a climatology TOML file (see the shipped one for the layout)."""
    with open(path, "rb") as fh:
        d = tomllib.load(fh)
    try:
        return Climatology(
            name=d["name"], clearsky_index=tuple(d["clearsky_index"]),
            temp_mean_c=tuple(d["temp_mean_c"]), temp_swing_c=float(d["temp_swing_c"]),
            source=d["source"], effective=d["effective"],
        )
    except KeyError as exc:
        raise ValueError(f"climatology file {path}: missing key {exc}") from None


def climatology_weather(
    climate: Climatology, location: Location, index: pd.DatetimeIndex,
    decomposition: Decomposition = "erbs",
) -> pd.DataFrame:
    """Interval-average ``ghi, dni, dhi`` [W/m²], ``temp_air`` [°C], ``wind_speed`` [m/s] on
    the 15-minute intervals starting at ``index``."""
    step = pd.Timedelta(minutes=15)
    clear = interval_clearsky(location, index, step, "start")["ghi"]
    kc = np.asarray(climate.clearsky_index)[index.month - 1]
    ghi = pd.Series(kc * clear.to_numpy(), index=index)
    parts = decompose(ghi, location, decomposition, times=index + step / 2)
    parts["temp_air"] = climate.temp_air(index).to_numpy()
    parts["wind_speed"] = 1.0
    return parts
