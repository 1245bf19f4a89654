"""Site descriptions and the fleet file.

A site is data: a TOML (fleet file) or JSON (API) document validated by the schema below.
Validation collects every bad field of every site and raises one
:class:`~models.errors.InvalidInputError` listing them all.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models import InvalidInputError

DISTRICTS = ("新北", "武进", "天宁", "钟楼", "经开区", "金坛", "溧阳")
SITE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
SiteId = Annotated[str, Field(pattern=SITE_ID_PATTERN)]
ClockTime = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]


class StrictModel(BaseModel):
    """Every field of a site has a physical (or length) upper bound: the fleet file and the
    API validate with this one schema."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


M = TypeVar("M", bound=BaseModel)


class Location(StrictModel):
    latitude: float = Field(ge=-90, le=90, description="[deg north]")
    longitude: float = Field(ge=-180, le=180, description="[deg east]")
    altitude_m: float = Field(default=5.0, ge=-500, le=9000, description="[m]")


class PVArray(StrictModel):
    name: str = Field(min_length=1, max_length=64)
    dc_kwp: float = Field(gt=0, le=100_000, description="DC nameplate [kWp]")
    ac_kw: float = Field(gt=0, le=100_000, description="inverter AC rating [kW]")
    tilt_deg: float = Field(ge=0, le=90, description="[deg from horizontal]")
    azimuth_deg: float = Field(ge=0, lt=360, description="[deg clockwise from north]")
    losses_percent: float = Field(default=14.0, ge=0, lt=100, description="DC losses [%]")
    gamma_pdc: float = Field(default=-0.0037, ge=-0.01, le=0,
                             description="temperature coefficient of DC power [1/°C]")


class Storage(StrictModel):
    power_kw: float = Field(gt=0, le=1_000_000, description="rated AC power [kW]")
    energy_kwh: float = Field(gt=0, le=10_000_000, description="nameplate energy [kWh]")
    eta_charge: float = Field(gt=0, le=1, description="one-way charge efficiency [-]")
    eta_discharge: float = Field(gt=0, le=1, description="one-way discharge efficiency [-]")
    soc_min_frac: float = Field(default=0.05, ge=0, le=1, description="[-] of energy_kwh")
    soc_max_frac: float = Field(default=0.95, ge=0, le=1, description="[-] of energy_kwh")
    soc_initial_frac: float = Field(default=0.5, ge=0, le=1, description="[-] of energy_kwh")
    grid_connection_date: dt.date = Field(ge=dt.date(1990, 1, 1), le=dt.date(2099, 12, 31))
    degradation_yuan_per_kwh: float = Field(default=0.05, ge=0, le=10, description="[yuan/kWh]")
    max_cycles_per_day: float = Field(default=2.0, gt=0, le=24, description="[cycles/day]")
    export_allowed: bool = Field(
        default=False,
        description="the battery may feed the grid (discharge while the site exports); "
                    "default no: user-side storage serves the site (assumption, see "
                    "docs/data.md)")
    min_direction_hold_h: float = Field(
        default=1.0, ge=0, le=24,
        description="minimum time between changes of direction (charging / discharging) [h]; "
                    "0: no rule")


class Grid(StrictModel):
    transformer_kva: float = Field(gt=0, le=10_000_000, description="[kVA]")
    import_limit_kw: float = Field(gt=0, le=10_000_000, description="[kW]")
    export_limit_kw: float = Field(ge=0, le=10_000_000, description="[kW]; 0 = anti-backflow")
    contract_demand_kw: float | None = Field(default=None, gt=0, le=10_000_000,
                                             description="[kW]")


class LoadSpec(StrictModel):
    archetype: str = Field(min_length=1, max_length=64)
    peak_kw: float = Field(gt=0, le=10_000_000, description="[kW]")


class FlexibleLoad(StrictModel):
    name: str = Field(min_length=1, max_length=64)
    energy_kwh: float = Field(ge=0, le=240_000_000,
                              description="energy per day inside the window [kWh]")
    window_start: ClockTime = Field(description="local time HH:MM")
    window_end: ClockTime = Field(description="local time HH:MM, after window_start; 24:00 ok")
    p_min_kw: float = Field(default=0.0, ge=0, le=10_000_000, description="[kW]")
    p_max_kw: float = Field(gt=0, le=10_000_000, description="[kW]")


class Site(StrictModel):
    id: SiteId
    name: str = Field(min_length=1, max_length=200)
    name_zh: str | None = Field(default=None, max_length=200)
    district: Literal["新北", "武进", "天宁", "钟楼", "经开区", "金坛", "溧阳"]
    park_type: str = Field(min_length=1, max_length=100)
    location: Location
    pv_arrays: list[PVArray] = Field(default_factory=list, max_length=100)
    storage: Storage | None = None
    grid: Grid
    tariff_id: str = Field(min_length=1, max_length=100)
    billing_basis: Literal["demand", "capacity"]
    load: LoadSpec
    flexible_loads: list[FlexibleLoad] = Field(default_factory=list, max_length=50)

    @property
    def pv_dc_kwp(self) -> float:
        """Total PV DC nameplate [kWp]."""
        return sum(a.dc_kwp for a in self.pv_arrays)


class Fleet(BaseModel):
    """The fleet file: version metadata and the sites, in file order."""

    model_config = ConfigDict(frozen=True)
    version: str
    source: str
    effective_from: dt.date | None = None
    illustrative: bool = False
    sites: tuple[Site, ...]

    def site(self, site_id: str) -> Site:
        """The site with this id; :class:`InvalidInputError` naming the known ids if absent."""
        for s in self.sites:
            if s.id == site_id:
                return s
        known = ", ".join(s.id for s in self.sites[:40])
        raise InvalidInputError(f"site_id={site_id!r} is not in the fleet; known: {known}")


def clock_minutes(hhmm: str) -> int:
    """Minutes after local midnight of an ``HH:MM`` clock time (``24:00`` is 1440)."""
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def site_problems(
    site: Site, tariff_ids: set[str] | None = None, archetypes: set[str] | None = None
) -> list[str]:
    """Cross-field and reference checks the field schema cannot express; one string each.

    ``tariff_ids`` and ``archetypes``, when given, are the known tariff ids and load shapes.
    """
    out = []
    st = site.storage
    if st is not None:
        if st.soc_min_frac > st.soc_max_frac:
            out.append(
                f"storage.soc_min_frac={st.soc_min_frac} > soc_max_frac={st.soc_max_frac}"
            )
        elif not st.soc_min_frac <= st.soc_initial_frac <= st.soc_max_frac:
            out.append(
                f"storage.soc_initial_frac={st.soc_initial_frac}: allowed range "
                f"[{st.soc_min_frac}, {st.soc_max_frac}] (soc_min_frac..soc_max_frac)"
            )
    if archetypes is not None and site.load.archetype not in archetypes:
        out.append(
            f"load.archetype={site.load.archetype!r}: allowed {', '.join(sorted(archetypes))}"
        )
    if tariff_ids is not None and site.tariff_id not in tariff_ids:
        out.append(f"tariff_id={site.tariff_id!r} unknown; known: {', '.join(sorted(tariff_ids))}")
    names = [a.name for a in site.pv_arrays]
    if len(set(names)) != len(names):
        out.append(f"pv_arrays: names must be unique, got {names}")
    names = [f.name for f in site.flexible_loads]
    if len(set(names)) != len(names):
        out.append(f"flexible_loads: names must be unique, got {names}")
    for i, fl in enumerate(site.flexible_loads):
        where = f"flexible_loads[{i}] ({fl.name})"
        a, b = clock_minutes(fl.window_start), clock_minutes(fl.window_end)
        if b <= a:
            out.append(
                f"{where}: window_end {fl.window_end} must be after window_start "
                f"{fl.window_start} on the same day"
            )
            continue
        if a % 15 or b % 15:
            out.append(f"{where}: window must start and end on a 15-minute boundary")
        if fl.p_min_kw > fl.p_max_kw:
            out.append(f"{where}: p_min_kw={fl.p_min_kw} > p_max_kw={fl.p_max_kw}")
        hours = (b - a) / 60
        if not fl.p_min_kw * hours <= fl.energy_kwh <= fl.p_max_kw * hours:
            out.append(
                f"{where}: energy_kwh={fl.energy_kwh} outside [{fl.p_min_kw * hours:g}, "
                f"{fl.p_max_kw * hours:g}] kWh that {hours:g} h at p_min..p_max can take"
            )
    return out


def format_validation_error(err: ValidationError) -> list[str]:
    out = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"])
        value = e.get("input")
        shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
        out.append(f"{loc}: {e['msg']}{shown}")
    return out


def parse_site(
    data: dict[str, Any], tariff_ids: set[str] | None = None, archetypes: set[str] | None = None
) -> Site:
    """Validate one site document; raise one :class:`InvalidInputError` listing every problem."""
    try:
        site = Site.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(format_validation_error(exc), "invalid site") from None
    problems = site_problems(site, tariff_ids, archetypes)
    if problems:
        raise InvalidInputError(problems, f"invalid site {site.id}")
    return site


def parse_fleet(
    data: dict[str, Any], tariff_ids: set[str] | None = None, archetypes: set[str] | None = None
) -> Fleet:
    """Validate a fleet document; every problem of every site goes into one error."""
    problems: list[str] = []
    sites: list[Site] = []
    raw_sites = data.get("sites")
    if not isinstance(raw_sites, list) or not raw_sites:
        problems.append("sites: need a non-empty list of [[sites]] tables")
        raw_sites = []
    for key in ("version", "source"):
        if not isinstance(data.get(key), str):
            problems.append(f"{key}: required string (the fleet file's {key} line)")
    for i, raw in enumerate(raw_sites):
        label = f"sites[{i}]" + (f" ({raw.get('id')})" if isinstance(raw, dict) else "")
        try:
            site = Site.model_validate(raw)
        except ValidationError as exc:
            problems += [f"{label}.{p}" for p in format_validation_error(exc)]
            continue
        problems += [f"{label}.{p}" for p in site_problems(site, tariff_ids, archetypes)]
        sites.append(site)
    ids = [s.id for s in sites]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        problems.append(f"sites: duplicate ids {dupes}")
    if problems:
        raise InvalidInputError(problems, "invalid fleet")
    meta = {k: data.get(k) for k in ("version", "source", "effective_from", "illustrative")}
    return Fleet(**{k: v for k, v in meta.items() if v is not None}, sites=tuple(sites))


def read_document(path: str | Path, what: str,
                  kind: Literal["toml", "json"] = "toml") -> dict[str, Any]:
    """The contents of a TOML or JSON data file; a missing or unparsable file is an
    :class:`InvalidInputError` naming ``what`` and the path."""
    p = Path(path)
    is_json = kind == "json"
    try:
        text = p.read_text(encoding="utf-8")
        data = json.loads(text) if is_json else tomllib.loads(text)
    except FileNotFoundError:
        raise InvalidInputError(f"{what} {p} not found") from None
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if is_json else "TOML"
        raise InvalidInputError(f"{what} {p}: not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"{what} {p}: needs an object at the top, got "
                                f"{type(data).__name__}")
    return data


def validate_document(model: type[M], data: Any, context: str) -> M:
    """``model`` validated from ``data``; every failing field in one
    :class:`InvalidInputError` under ``context``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(format_validation_error(exc), context) from None


def load_fleet(
    path: Path, tariff_ids: set[str] | None = None, archetypes: set[str] | None = None
) -> Fleet:
    """Read and validate a fleet TOML file (errors name the file)."""
    try:
        return parse_fleet(read_document(path, "fleet file"), tariff_ids, archetypes)
    except InvalidInputError as exc:
        if str(path) in exc.context:
            raise
        raise exc.naming(f"{Path(path).name}: ", f"invalid fleet file {path}") from None
