"""PV descriptions from files: system JSON, stored calibrations, backtest datasets.

A *system file* describes a PV system that is not in the fleet::

    {"latitude": 31.81, "longitude": 119.97, "altitude_m": 5, "tz": "Asia/Shanghai",
     "arrays": [{"name": "roof", "dc_kwp": 500, "ac_kw": 450, "tilt_deg": 5,
                 "azimuth_deg": 180, "losses_percent": 14}]}

A *calibration file* (``<dir>/<SITE>.toml``, written by ``vpp pv calibrate --site ID
--save``) holds the fitted array parameters, the decomposition and the band table of one site;
plans of that site use it from then on.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import Field

import forecasts
from forecasts.bands import band_from_dict
from forecasts.calibration import Calibration, read_power_csv
from forecasts.pv import ArraySpec, SystemSpec
from forecasts.pv_forecast import PVModel
from forecasts.weather import Weather, read_weather
from models import InvalidInputError
from vpp.sites import (
    PVArray,
    Site,
    StrictModel,
    read_document,
    validate_document,
)


class PVSystemFile(StrictModel):
    latitude: float = Field(ge=-90, le=90, description="[deg north]")
    longitude: float = Field(ge=-180, le=180, description="[deg east]")
    altitude_m: float = Field(default=5.0, ge=-500, le=9000, description="[m]")
    tz: str = Field(default="Asia/Shanghai", description="IANA time zone of local timestamps")
    arrays: list[PVArray] = Field(min_length=1)


def array_spec(a: PVArray) -> ArraySpec:
    return ArraySpec(a.name, a.dc_kwp, a.ac_kw, a.tilt_deg, a.azimuth_deg, a.losses_percent,
                     a.gamma_pdc)


def parse_system(data: dict[str, Any], where: str) -> SystemSpec:
    """A :class:`SystemSpec` from a system description; errors name every bad field."""
    f = validate_document(PVSystemFile, data, f"invalid PV system in {where}")
    return SystemSpec(f.latitude, f.longitude, f.altitude_m,
                      tuple(array_spec(a) for a in f.arrays), f.tz)


def load_system_json(path: str | Path) -> SystemSpec:
    """A system file (JSON, see the module docstring) as a :class:`SystemSpec`."""
    return parse_system(read_document(path, "system file", "json"), str(path))


def site_system(site: Site) -> SystemSpec:
    """The fleet site's PV as a :class:`SystemSpec`."""
    return SystemSpec(site.location.latitude, site.location.longitude, site.location.altitude_m,
                      tuple(array_spec(a) for a in site.pv_arrays))


def calibration_record(site_id: str, cal: Calibration) -> dict[str, Any]:
    """What ``--save`` writes: fitted arrays, decomposition, bands, metrics."""
    m = cal.model
    return {
        "site_id": site_id,
        "fitted": {k: v for k, v in cal.fitted.items() if not isinstance(v, type(None))},
        "decomposition": m.decomposition,
        "arrays": [{"name": a.name, "dc_kwp": round(a.dc_kwp, 4), "gamma_pdc": a.gamma_pdc,
                    "losses_percent": round(a.losses_percent, 4), "tilt_deg": a.tilt_deg,
                    "azimuth_deg": a.azimuth_deg}
                   for a in m.system.arrays],
        "bands": m.bands.as_dict() if m.bands else None,
        "before": cal.before.as_dict(),
        "after": cal.after.as_dict(),
    }


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v), ensure_ascii=False)


def write_calibration(folder: str | Path, record: dict[str, Any]) -> Path:
    """Write ``record`` as ``<folder>/<site_id>.toml`` and return the path."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# PV calibration of {record['site_id']}, written by `vpp pv calibrate --save`.",
             f"site_id = {_toml_value(record['site_id'])}",
             f"decomposition = {_toml_value(record['decomposition'])}", ""]
    for table in ("fitted", "before", "after", "bands"):
        if record.get(table):
            lines.append(f"[{table}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in record[table].items()]
            lines.append("")
    for a in record["arrays"]:
        lines.append("[[arrays]]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in a.items()]
        lines.append("")
    path = out / f"{record['site_id']}.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def read_calibration(path: str | Path) -> dict[str, Any]:
    return read_document(path, "calibration file")


def site_pv_model(site: Site, calibrations: str | Path | None = None) -> PVModel:
    """The site's PV model, with its stored calibration applied when ``calibrations`` holds
    ``<site id>.toml``."""
    model = PVModel(site_system(site))
    if calibrations is None:
        return model
    path = Path(calibrations) / f"{site.id}.toml"
    if not path.is_file():
        return model
    rec = read_calibration(path)
    fitted = {a["name"]: a for a in rec.get("arrays", [])}
    unknown = set(fitted) - {a.name for a in model.system.arrays}
    if unknown:
        raise InvalidInputError(f"calibration {path} names arrays {sorted(unknown)} that "
                                f"site {site.id} does not have")
    arrays = tuple(
        replace(a, **{k: fitted[a.name][k] for k in ("dc_kwp", "gamma_pdc", "losses_percent",
                                                      "tilt_deg", "azimuth_deg")
                      if k in fitted[a.name]})
        if a.name in fitted else a
        for a in model.system.arrays
    )
    return PVModel(
        replace(model.system, arrays=arrays),
        decomposition=rec.get("decomposition", "dirint"),
        bands=band_from_dict(rec["bands"]) if rec.get("bands") else None,
        calibrated={"file": str(path), **rec.get("fitted", {})},
    )


DEFAULT_DATASET = Path(forecasts.__file__).parent / "data" / "serf-east" / "dataset.toml"


def load_pv_dataset(path: str | Path = DEFAULT_DATASET) -> tuple[SystemSpec, Weather, pd.Series,
                                                                 dict[str, Any]]:
    """A backtest dataset: the system, its weather, its measured AC power [kW] on 15-minute
    interval starts, and the file's metadata (``name``, ``source``, ``calibration_days``)."""
    p = Path(path)
    d = read_document(p, "dataset file")
    missing = [k for k in ("system", "power", "weather") if k not in d]
    if missing:
        raise InvalidInputError(f"dataset {p}: missing tables {missing}")
    system = parse_system(d["system"], str(p))
    pw, wx = d["power"], d["weather"]
    measured = read_power_csv(p.parent / pw["file"], pw.get("column", "ac_power_kw"),
                              pw.get("unit", "kW"), pw.get("label", "start"), system.tz)
    weather = read_weather(p.parent / wx["file"], system.tz, wx.get("label"))
    meta = {k: d.get(k) for k in ("name", "source", "calibration_days")}
    return system, weather, measured, meta
