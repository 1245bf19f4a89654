"""Weather for the PV chain: file readers, regridding to 15 minutes, and missing irradiance.

Every reader returns a :class:`Weather`: a frame with some of the columns in :data:`RANGES`,
the time convention of its rows (``label``) and a human description of where it came from.
:func:`prepare` turns any of them into the 15-minute, interval-start frame with ``ghi, dni,
dhi, temp_air, wind_speed`` that :func:`forecasts.pv.pv_ac_kw` runs on, filling what the file
lacks in this order of preference:

1. GHI + DNI + DHI given: used as they are;
2. GHI only: DNI from a pvlib decomposition (DIRINT by default, Erbs or DISC on request) and
   DHI = GHI - DNI cos(zenith);
3. cloud cover only: GHI = GHI_clear x (0.35 + 0.65 (1 - cc/100)), the linear transform of
   Larson et al. (2016) that pvlib's forecast module used, with GHI_clear from Ineichen and the
   Linke turbidity shipped with pvlib; then as 2.

Time conventions (``label``): ``"start"`` - a row is the average over the interval starting at
its timestamp (our own CSV files, the meter data); ``"end"`` - the average over the interval
ending at its timestamp (EPW and TMY3 files, most data loggers); ``"instant"`` - a sample at its
timestamp (numerical weather prediction output, NSRDB PSM3).

Regridding to 15 minutes interpolates the *clear-sky index* (irradiance / clear-sky irradiance,
each averaged over its interval) between interval midpoints and multiplies by the clear-sky
average of each 15-minute interval, so hourly averages keep sunrise and sunset where the sun
puts them instead of smearing light into the night. Temperature, wind and cloud cover are
interpolated linearly between midpoints.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pvlib
from pvlib.location import Location

from forecasts.solar import clear_sky, sun
from forecasts.timestamps import Ambiguous, Nonexistent, parse_times, timestamp_column

Label = Literal["start", "end", "instant"]
Decomposition = Literal["dirint", "erbs", "disc"]

#: Accepted columns, their unit and plausible range (inclusive).
RANGES: dict[str, tuple[str, float, float]] = {
    "ghi": ("W/m²", 0.0, 1500.0),
    "dni": ("W/m²", 0.0, 1400.0),
    "dhi": ("W/m²", 0.0, 1000.0),
    "temp_air": ("°C", -50.0, 60.0),
    "wind_speed": ("m/s", 0.0, 75.0),
    "cloud_cover": ("%", 0.0, 100.0),
}
#: Other spellings accepted in CSV headers (the time column: see
#: :data:`forecasts.timestamps.TIMESTAMP_NAMES`).
ALIASES = {
    "global_horizontal": "ghi", "dni_w_m2": "dni", "dhi_w_m2": "dhi", "ghi_w_m2": "ghi",
    "temperature": "temp_air", "temp": "temp_air", "air_temperature": "temp_air",
    "wind": "wind_speed", "cloud": "cloud_cover", "total_cloud_cover": "cloud_cover",
    "cloudcover": "cloud_cover",
}
#: Offset of the cloud-cover transform: the share of clear-sky GHI left under full overcast.
CLOUD_OFFSET = 0.35
DEFAULT_WIND_M_S = 1.0
_FINE = pd.Timedelta(minutes=5)  # clear-sky sampling step for interval averages
_MIN_CLEAR_W_M2 = 20.0  # below this the clear-sky index is undefined (sunrise, sunset)


@dataclass(frozen=True)
class Weather:
    """Weather rows as read, before regridding.

    ``frame`` is indexed by tz-aware timestamps meaning what ``label`` says; ``source`` says
    where the rows came from and is carried into forecasts and plans.
    """

    frame: pd.DataFrame
    label: Label
    source: str

    @property
    def kind(self) -> str:
        """Best input present: ``irradiance`` (GHI+DNI+DHI), ``ghi``, or ``cloud_cover``."""
        cols = set(self.frame.columns)
        if {"ghi", "dni", "dhi"} <= cols:
            return "irradiance"
        if "ghi" in cols:
            return "ghi"
        return "cloud_cover"


def check_frame(frame: pd.DataFrame, what: str) -> None:
    """Raise ``ValueError`` naming every missing or out-of-range column of ``frame``."""
    problems = []
    if not {"ghi", "cloud_cover"} & set(frame.columns):
        problems.append(
            "needs 'ghi' (W/m², optionally with 'dni' and 'dhi') or 'cloud_cover' (%); found "
            f"{sorted(frame.columns)}"
        )
    if ("dni" in frame.columns) != ("dhi" in frame.columns):
        problems.append("'dni' and 'dhi' come together (or leave both out)")
    for col, (unit, lo, hi) in RANGES.items():
        if col not in frame.columns:
            continue
        v = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(np.isnan(v) | (v < lo) | (v > hi))
        if len(bad):
            first = bad[0]
            problems.append(
                f"'{col}' must be a number in [{lo:g}, {hi:g}] {unit}; {len(bad)} row(s) are "
                f"not, first at {frame.index[first]} ({frame[col].iloc[first]!r})"
            )
    if len(frame) < 2:
        problems.append(f"needs at least 2 rows, got {len(frame)}")
    elif not frame.index.is_monotonic_increasing or frame.index.has_duplicates:
        problems.append("timestamps must increase strictly")
    elif not problems:
        problems += _implausible(frame)
    if problems:
        raise ValueError(f"{what}: " + "; ".join(problems))


def _implausible(frame: pd.DataFrame) -> list[str]:
    """Irradiance that is in range but cannot be right: a whole day whose GHI never passes
    2 W/m² (kW/m² written as W/m²), diffuse above global."""
    out = []
    ghi = frame["ghi"].to_numpy(dtype=float) if "ghi" in frame else None
    if ghi is not None and frame.index[-1] - frame.index[0] >= pd.Timedelta(hours=20):
        top = float(np.nanmax(ghi, initial=0.0))
        if 0.0 < top <= 2.0:
            out.append(f"'ghi' is at most {top:g} over {frame.index[0]:%Y-%m-%d %H:%M} .. "
                       f"{frame.index[-1]:%Y-%m-%d %H:%M}: irradiance is in W/m² (a value in "
                       "kW/m²?)")
    if ghi is not None and "dhi" in frame:
        dhi = frame["dhi"].to_numpy(dtype=float)
        bad = np.flatnonzero(dhi > 1.1 * ghi + 20.0)
        if len(bad):
            out.append(f"'dhi' above 'ghi' in {len(bad)} row(s), first at {frame.index[bad[0]]} "
                       f"(dhi {dhi[bad[0]]:g}, ghi {ghi[bad[0]]:g} W/m²): diffuse is part of "
                       "the global irradiance (columns swapped?)")
    return out


def read_weather_csv(
    source: str | Path | io.IOBase, tz: str = "Asia/Shanghai", label: Label = "start",
    ambiguous: Ambiguous = "raise", nonexistent: Nonexistent = "raise",
) -> Weather:
    """Read a CSV with a time column and any of the columns in :data:`RANGES`.

    The time column is any of :data:`forecasts.timestamps.TIMESTAMP_NAMES`; timestamps
    without an offset are local time in ``tz``, and local times that occur twice or not at all
    there are an error unless ``ambiguous`` / ``nonexistent`` say how to read them
    (:func:`forecasts.timestamps.parse_times`). ``label`` says what a row means (default: the
    average over the interval starting at its timestamp). Extra columns are ignored; header
    spellings in :data:`ALIASES` are accepted.
    """
    name = getattr(source, "name", str(source))
    what = f"weather CSV {name}"
    df = pd.read_csv(source)
    time_col = timestamp_column(df.columns, what)
    times = df.pop(time_col)
    df.columns = [ALIASES.get(c.strip().lower(), c.strip().lower()) for c in df.columns]
    idx, keep = parse_times(times, tz, what, time_col, ambiguous, nonexistent)
    df = df[keep]
    frame = df[[c for c in RANGES if c in df.columns]].set_axis(idx)
    frame = frame[~frame.index.duplicated()]
    check_frame(frame, what)
    return Weather(frame.astype(float), label, f"weather CSV {Path(name).name} ({label}-labelled)")


def _iotools_weather(frame: pd.DataFrame, what: str, year: int | None) -> pd.DataFrame:
    keep = frame[[c for c in ("ghi", "dni", "dhi", "temp_air", "wind_speed") if c in frame]]
    if year is not None:  # typical-year files mix years: put every hour in ``year``
        hour = pd.Timedelta(hours=1)  # rows are hour-ending: move the hour's start
        starts = keep.index - hour
        keep = keep.copy()
        keep.index = pd.DatetimeIndex(
            [t.replace(year=year) + hour if not (t.month == 2 and t.day == 29) else pd.NaT
             for t in starts]
        )
        keep = keep[keep.index.notna()].sort_index()
        keep = keep[~keep.index.duplicated()]
    check_frame(keep, what)
    return keep.astype(float)


def read_epw(path: str | Path, year: int | None = None) -> Weather:
    """Read an EnergyPlus weather file with :func:`pvlib.iotools.read_epw`.

    EPW rows are averages over the hour *ending* at the timestamp. ``year`` moves a typical
    year onto a calendar year (29 February dropped).
    """
    data, meta = pvlib.iotools.read_epw(path)
    frame = _iotools_weather(data, f"EPW {Path(path).name}", year)
    place = meta.get("city", "?")
    return Weather(frame, "end", f"EPW {Path(path).name} ({place}, hour-ending averages)")


def read_tmy3(path: str | Path, year: int | None = None) -> Weather:
    """Read a TMY3 file with :func:`pvlib.iotools.read_tmy3` (hour-ending averages)."""
    data, meta = pvlib.iotools.read_tmy3(path, map_variables=True)
    frame = _iotools_weather(data, f"TMY3 {Path(path).name}", year)
    place = meta.get("Name", "?")
    return Weather(frame, "end", f"TMY3 {Path(path).name} ({place}, hour-ending averages)")


def read_weather(
    path: str | Path, tz: str = "Asia/Shanghai", label: Label | None = None,
    year: int | None = None, ambiguous: Ambiguous = "raise", nonexistent: Nonexistent = "raise",
) -> Weather:
    """Read a weather file by its extension: ``.epw``, TMY3 ``.csv`` (detected by its header
    line), else our CSV with named columns (``label`` default ``"start"``; ``ambiguous`` and
    ``nonexistent`` as in :func:`read_weather_csv`)."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"weather file {p} does not exist")
    if p.suffix.lower() == ".epw":
        return read_epw(p, year)
    opener = gzip.open if p.suffix.lower() == ".gz" else open  # .csv.gz: compressed CSV
    with opener(p, "rt", encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
    if first.count(",") in (6, 7) and "timestamp" not in first.lower() and first[:1].isdigit():
        return read_tmy3(p, year)
    return read_weather_csv(p, tz, label or "start", ambiguous, nonexistent)


def _clear(location: Location, times: pd.DatetimeIndex) -> pd.DataFrame:
    return clear_sky(location, times)


def interval_clearsky(
    location: Location, index: pd.DatetimeIndex, step: pd.Timedelta, label: Label
) -> pd.DataFrame:
    """Clear-sky ``ghi, dni, dhi`` [W/m²] for each row of ``index``: the average over its
    interval (5-minute sampling) or, for ``label="instant"``, the value at the timestamp."""
    if label == "instant":
        return _clear(location, index).set_axis(index)
    n_sub = max(1, round(step / _FINE))
    sub = step / n_sub
    first = index - step if label == "end" else index
    ns = _ns(first)
    if len(ns) < 2 or np.all(np.diff(ns) == step.value):
        # a regular grid: one fine regular grid, averaged in blocks (cached by solar.py)
        fine = pd.date_range(first[0] + sub / 2, periods=len(index) * n_sub, freq=sub)
        cs = _clear(location, fine)
        values = cs.to_numpy().reshape(len(index), n_sub, 3).mean(axis=1)
    else:
        offsets = [sub * (k + 0.5) for k in range(n_sub)]
        times = pd.DatetimeIndex(np.concatenate([_ns(first + o) for o in offsets]), tz="UTC")
        cs = _clear(location, times.tz_convert(index.tz))
        values = cs.to_numpy().reshape(n_sub, len(index), 3).mean(axis=0)
    return pd.DataFrame(values, index=index, columns=cs.columns)


def _ns(index: pd.DatetimeIndex) -> np.ndarray:
    """Epoch nanoseconds, whatever the index's resolution."""
    return index.as_unit("ns").asi8


def _step(index: pd.DatetimeIndex) -> pd.Timedelta:
    return pd.Timedelta(int(np.median(np.diff(_ns(index)))), unit="ns")


def _midpoints(index: pd.DatetimeIndex, step: pd.Timedelta, label: Label) -> np.ndarray:
    shift = {"start": step / 2, "end": -step / 2, "instant": pd.Timedelta(0)}[label]
    return _ns(index + shift).astype(float)


def regrid(weather: Weather, location: Location, index: pd.DatetimeIndex) -> pd.DataFrame:
    """``weather`` as averages over the intervals starting at ``index`` (see module notes).

    Raises ``ValueError`` when ``index`` reaches more than one native step beyond the data.
    """
    frame = weather.frame
    step = _step(frame.index)
    target_step = _step(index) if len(index) > 1 else pd.Timedelta(minutes=15)
    x_native = _midpoints(frame.index, step, weather.label)
    x_target = _midpoints(index, target_step, "start")
    slack = step.value
    if x_target[0] < x_native[0] - slack or x_target[-1] > x_native[-1] + slack:
        lo = pd.Timestamp(int(x_native[0]), tz="UTC").tz_convert(index.tz)
        hi = pd.Timestamp(int(x_native[-1]), tz="UTC").tz_convert(index.tz)
        raise ValueError(
            f"{weather.source} covers {lo:%Y-%m-%d %H:%M} to {hi:%Y-%m-%d %H:%M} (interval "
            f"midpoints), the forecast asks for {index[0]:%Y-%m-%d %H:%M} to "
            f"{index[-1] + target_step:%Y-%m-%d %H:%M}"
        )
    out = pd.DataFrame(index=index)
    irr = [c for c in ("ghi", "dni", "dhi") if c in frame]
    if irr:
        cs_native = interval_clearsky(location, frame.index, step, weather.label)
        cs_target = interval_clearsky(location, index, target_step, "start")
        for col in irr:
            ref = "dni" if col == "dni" else "ghi"
            clear = cs_native[ref].to_numpy()
            ok = clear >= _MIN_CLEAR_W_M2
            if not ok.any():
                out[col] = 0.0
                continue
            k = np.clip(frame[col].to_numpy()[ok] / clear[ok], 0.0, 2.0)
            k_t = np.interp(x_target, x_native[ok], k)
            out[col] = k_t * cs_target[ref].to_numpy()
    for col in ("temp_air", "wind_speed", "cloud_cover"):
        if col in frame:
            out[col] = np.interp(x_target, x_native, frame[col].to_numpy())
    return out


def cloud_cover_to_ghi(cloud_cover_pct: np.ndarray, ghi_clear: np.ndarray) -> np.ndarray:
    """GHI [W/m²] from total cloud cover [%]: ``ghi_clear (0.35 + 0.65 (1 - cc/100))``."""
    cc = np.asarray(cloud_cover_pct, dtype=float) / 100.0
    return np.asarray(ghi_clear, dtype=float) * (CLOUD_OFFSET + (1 - CLOUD_OFFSET) * (1 - cc))


def decompose(
    ghi: pd.Series, location: Location, method: Decomposition = "dirint",
    times: pd.DatetimeIndex | None = None,
) -> pd.DataFrame:
    """DNI and DHI [W/m²] from GHI with a pvlib decomposition model.

    ``times`` are the instants the values stand for (interval midpoints); ``ghi`` is indexed
    by them when omitted. DIRINT uses the variability of neighbouring rows, so it wants a
    regular series.
    """
    t = ghi.index if times is None else times
    g = pd.Series(np.asarray(ghi, dtype=float), index=t)
    zen = pd.Series(sun(location, t)["zenith"], index=t)
    if method == "erbs":
        dni = pvlib.irradiance.erbs(g, zen, t)["dni"]
    elif method == "disc":
        dni = pvlib.irradiance.disc(g, zen, t)["dni"]
    elif method == "dirint":
        dni = pvlib.irradiance.dirint(g, zen, t, pressure=pvlib.atmosphere.alt2pres(
            location.altitude))
    else:
        raise ValueError(f"decomposition must be dirint, erbs or disc, got {method!r}")
    dni = dni.fillna(0.0).clip(lower=0.0)
    cosz = np.cos(np.radians(zen)).clip(lower=0.0)
    dhi = (g - dni * cosz).clip(lower=0.0)
    return pd.DataFrame({"ghi": g, "dni": dni, "dhi": dhi}).set_axis(ghi.index)


def prepare(
    weather: Weather, location: Location, index: pd.DatetimeIndex,
    decomposition: Decomposition = "dirint", temp_air: pd.Series | None = None,
) -> pd.DataFrame:
    """15-minute, interval-start ``ghi, dni, dhi, temp_air, wind_speed`` for ``index``.

    A file without temperature takes ``temp_air`` [°C] on ``index`` (e.g. the climatology of
    :mod:`forecasts.climate`); without either it is an error. Missing wind is 1 m/s.
    """
    grid = regrid(weather, location, index)
    if "temp_air" not in grid:
        if temp_air is None:
            raise ValueError(f"{weather.source}: no 'temp_air' column and no climatology to "
                             "fill it from")
        grid["temp_air"] = np.asarray(temp_air, dtype=float)
    step = _step(index) if len(index) > 1 else pd.Timedelta(minutes=15)
    mid = index + step / 2
    if weather.kind == "cloud_cover":
        clear = interval_clearsky(location, index, step, "start")["ghi"].to_numpy()
        grid["ghi"] = cloud_cover_to_ghi(grid["cloud_cover"].to_numpy(), clear)
    if weather.kind != "irradiance":
        parts = decompose(grid["ghi"], location, decomposition, times=mid)
        grid["dni"] = parts["dni"].to_numpy()
        grid["dhi"] = parts["dhi"].to_numpy()
    if "wind_speed" not in grid:
        grid["wind_speed"] = DEFAULT_WIND_M_S
    return grid


def coverage(weather: Weather) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(start, end) of the time the rows cover: a start-labelled row covers its interval, an
    end-labelled row the interval before it, an instant sample one native step either side
    (what :func:`regrid` accepts)."""
    idx = weather.frame.index
    step = _step(idx)
    before = pd.Timedelta(0) if weather.label == "start" else step
    after = pd.Timedelta(0) if weather.label == "end" else step
    return idx[0] - before, idx[-1] + after


def with_source(weather: Weather, source: str) -> Weather:
    """The same rows under another description."""
    return replace(weather, source=source)
