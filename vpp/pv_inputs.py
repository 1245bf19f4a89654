"""PV descriptions from files: system JSON, stored calibrations, backtest datasets.

A *system file* describes a PV system that is not in the fleet::

    {"latitude": 31.81, "longitude": 119.97, "altitude_m": 5, "tz": "Asia/Shanghai",
     "arrays": [{"name": "roof", "dc_kwp": 500, "ac_kw": 450, "tilt_deg": 5,
                 "azimuth_deg": 180, "losses_percent": 14}]}

and optionally what a calibration found: ``decomposition`` (``dirint``, ``erbs``, ``disc``),
``bands`` (P10/P90 tables by weather kind: ``{"ghi": {"edges": [...], "q10": [...], "q90":
[...], "kmax": 1.2, "source": "..."}}``) and ``calibration`` (the fitted values, the errors
before and after, what the screening found; kept for the record). ``vpp pv calibrate --system
FILE --out cal.json`` writes such a file, and ``vpp pv forecast --system cal.json`` uses it.

A *calibration file* (``<dir>/<SITE>.toml``, written by ``vpp pv calibrate --site ID
--save``) holds the fitted array parameters, the decomposition and the band table of one site;
plans of that site use it from then on.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import Field, field_validator

import forecasts
from forecasts.bands import BandModel, band_from_dict
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

KINDS = ("irradiance", "ghi", "cloud_cover", "climatology")


class BandTable(StrictModel):
    edges: list[float] = Field(min_length=2, description="clear-sky-index bin edges [-]")
    q10: list[float] = Field(min_length=1, description="[-] of the clear-sky AC power")
    q90: list[float] = Field(min_length=1, description="[-] of the clear-sky AC power")
    kmax: float = Field(default=1.0, ge=1.0, le=1.5, description="P90 envelope [-]")
    reference_ratio: float | None = Field(
        default=None, gt=0, le=1.5, description="P50 / clear-sky AC power the table was "
        "fitted at; set: the quantiles scale with each forecast's own ratio [-]")
    source: str = ""


class PVSystemFile(StrictModel):
    latitude: float = Field(ge=-90, le=90, description="[deg north]")
    longitude: float = Field(ge=-180, le=180, description="[deg east]")
    altitude_m: float = Field(default=5.0, ge=-500, le=9000, description="[m]")
    tz: str = Field(default="Asia/Shanghai", description="IANA time zone of local timestamps")
    arrays: list[PVArray] = Field(min_length=1)
    decomposition: Literal["dirint", "erbs", "disc"] | None = None

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}: an IANA name such as Asia/Shanghai "
                             "or UTC") from None
        return v
    bands: dict[Literal["irradiance", "ghi", "cloud_cover", "climatology"], BandTable] | None \
        = None
    calibration: dict[str, Any] | None = None


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
    return load_system_model(path).system


def _bands(tables: dict[str, Any], where: str) -> dict[str, BandModel]:
    out = {}
    for kind, t in tables.items():
        d = t if isinstance(t, dict) else t.model_dump()
        try:
            out[kind] = band_from_dict(d)
        except ValueError as exc:
            raise InvalidInputError(f"bands.{kind}: {exc}", f"invalid PV system in {where}") \
                from None
    return out


def load_system_model(path: str | Path) -> PVModel:
    """A system file as a :class:`PVModel`: its arrays, and the decomposition and bands of
    its calibration when it carries them."""
    data = read_document(path, "system file", "json")
    f = validate_document(PVSystemFile, data, f"invalid PV system in {path}")
    system = SystemSpec(f.latitude, f.longitude, f.altitude_m,
                        tuple(array_spec(a) for a in f.arrays), f.tz)
    calibrated = {"file": str(path), **(f.calibration or {}).get("fitted", {})} \
        if f.calibration else {}
    return PVModel(system, decomposition=f.decomposition or "dirint",
                   bands=_bands(f.bands or {}, str(path)), calibrated=calibrated)


def _round(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 6)
    if isinstance(v, dict):
        return {k: _round(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_round(x) for x in v]
    return v


def system_document(model: PVModel, cal: Calibration | None = None) -> dict[str, Any]:
    """``model`` as a system file (a dict ready for JSON): location, arrays, decomposition,
    bands by weather kind, and with ``cal`` the calibration's record. The result validates
    as a system file (:func:`load_system_model`)."""
    s = model.system
    doc: dict[str, Any] = {
        "latitude": s.latitude, "longitude": s.longitude, "altitude_m": s.altitude_m,
        "tz": s.tz,
        "arrays": [{"name": a.name, "dc_kwp": round(a.dc_kwp, 4), "ac_kw": round(a.ac_kw, 4),
                    "tilt_deg": a.tilt_deg, "azimuth_deg": a.azimuth_deg,
                    "losses_percent": round(a.losses_percent, 4),
                    "gamma_pdc": round(a.gamma_pdc, 6)} for a in s.arrays],
        "decomposition": model.decomposition,
    }
    if model.bands:
        doc["bands"] = {k: b.as_dict() for k, b in model.bands.items()}
    if cal is not None:
        doc["calibration"] = _round({
            "fitted": cal.fitted, "before": cal.before.as_dict(),
            "after": cal.after.as_dict(),
            "quality": cal.quality.as_dict() if cal.quality is not None else None,
            "warnings": list(cal.warnings)})
    return doc


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
        "bands": {k: b.as_dict() for k, b in m.bands.items()},
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
    for table in ("fitted", "before", "after"):
        if record.get(table):
            lines.append(f"[{table}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in record[table].items()]
            lines.append("")
    for kind, band in (record.get("bands") or {}).items():
        lines.append(f"[bands.{kind}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in band.items()]
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
        bands=_site_bands(rec.get("bands") or {}, str(path)),
        calibrated={"file": str(path), **rec.get("fitted", {})},
    )


def _site_bands(tables: dict[str, Any], where: str) -> dict[str, BandModel]:
    """Bands of a stored calibration: ``[bands.<kind>]`` tables; a single ``[bands]`` table
    (files written before bands were kept by weather kind) was fitted on measured irradiance
    or GHI and serves those two kinds."""
    if "edges" in tables:
        b = _bands({"ghi": tables}, where)["ghi"]
        return {"irradiance": b, "ghi": b}
    unknown = sorted(set(tables) - set(KINDS))
    if unknown:
        raise InvalidInputError(f"calibration {where}: bands for unknown weather kinds "
                                f"{unknown}; known {list(KINDS)}")
    return _bands(tables, where)


DATA = Path(forecasts.__file__).parent / "data"
#: Backtest datasets shipped with the project, by name.
DATASETS = {"serf-east": DATA / "serf-east" / "dataset.toml",
            "pvdaq-50": DATA / "pvdaq-50" / "dataset.toml"}
DEFAULT_DATASET = DATASETS["serf-east"]


def dataset_path(name_or_path: str | Path) -> Path:
    """A shipped dataset's TOML by name (:data:`DATASETS`), or the given path."""
    return DATASETS.get(str(name_or_path), Path(name_or_path))


def load_pv_dataset(path: str | Path = DEFAULT_DATASET) -> tuple[SystemSpec, Weather, pd.Series,
                                                                 dict[str, Any]]:
    """A backtest dataset: the system, its weather, its measured AC power [kW] on 15-minute
    interval starts, and the file's metadata (``name``, ``source``, ``calibration_days`` or
    ``calibration_start``/``test_start``/``test_end`` dates, ``fix_shifts``)."""
    p = dataset_path(path)
    d = read_document(p, "dataset file")
    missing = [k for k in ("system", "power", "weather") if k not in d]
    if missing:
        raise InvalidInputError(f"dataset {p}: missing tables {missing}")
    system = parse_system(d["system"], str(p))
    pw, wx = d["power"], d["weather"]
    measured = read_power_csv(p.parent / pw["file"], pw.get("column", "ac_power_kw"),
                              pw.get("unit", "kW"), pw.get("label", "start"), system.tz)
    weather = read_weather(p.parent / wx["file"], system.tz, wx.get("label"))
    meta = {k: d.get(k) for k in ("name", "source", "licence", "calibration_days",
                                  "fix_shifts")}
    for k in ("calibration_start", "test_start", "test_end"):
        meta[k] = pd.Timestamp(d[k]).tz_localize(system.tz) if k in d else None
    if meta["calibration_start"] is not None:
        measured = measured[measured.index >= meta["calibration_start"]]
    return system, weather, measured, meta
