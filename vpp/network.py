"""Shared network limits (feeders, substations) and demand-response event files.

Both are data: a feeder file (TOML, versioned, with a source) names groups of sites and their
aggregate import/export caps; an event file (JSON) carries the grid's instructions for a day.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from models import DREvent, FeederCap, InvalidInputError
from vpp.sites import Fleet, StrictModel, read_document, validate_document

if TYPE_CHECKING:
    import pandas as pd


class Feeder(StrictModel):
    name: str = Field(min_length=1, max_length=200)
    site_ids: list[str] = Field(min_length=1)
    import_cap_kw: float | None = Field(default=None, ge=0, description="[kW]")
    export_cap_kw: float | None = Field(default=None, ge=0, description="[kW]")


class FeederFile(StrictModel):
    version: str
    source: str
    effective_from: dt.date | None = None
    illustrative: bool = False
    feeders: list[Feeder] = Field(default_factory=list)


def load_feeders(path: str | Path, fleet: Fleet) -> FeederFile:
    """Read and validate a feeder file against the fleet (every site known, none twice)."""
    p = Path(path)
    doc = read_document(p, "feeder file")
    raw = doc.get("feeders") if isinstance(doc, dict) else None
    problems = _fleet_problems(raw if isinstance(raw, list) else [],
                               {s.id for s in fleet.sites})
    try:
        f = validate_document(FeederFile, doc, f"invalid feeder file {p}")
    except InvalidInputError as exc:  # every problem at once, the file's and the fleet's
        raise InvalidInputError([*exc.problems, *problems], exc.context) from None
    if problems:
        raise InvalidInputError(problems, f"invalid feeder file {p}")
    return f


def _fleet_problems(feeders: list, known: set[str]) -> list[str]:
    """What the fleet says about a feeder file's raw tables: every site known, none behind
    two feeders, each feeder with a cap."""
    problems, seen = [], {}
    for i, fd in enumerate(feeders):
        if not isinstance(fd, dict):
            continue
        name = fd.get("name", "?")
        ids = fd.get("site_ids")
        for s in ids if isinstance(ids, list) else []:
            if s not in known:
                problems.append(f"feeders[{i}] ({name}): site {s} is not in the fleet")
            elif s in seen:
                problems.append(f"feeders[{i}] ({name}): site {s} "
                                + ("listed twice" if seen[s] == (i, name) else
                                   f"is already behind {seen[s][1]}"))
            else:
                seen[s] = (i, name)
        if fd.get("import_cap_kw") is None and fd.get("export_cap_kw") is None:
            problems.append(f"feeders[{i}] ({name}): give import_cap_kw or export_cap_kw")
    return problems


def feeder_caps(f: FeederFile) -> tuple[FeederCap, ...]:
    return tuple(FeederCap(fd.name, tuple(fd.site_ids), fd.import_cap_kw, fd.export_cap_kw)
                 for fd in f.feeders)


class EventSpec(StrictModel):
    id: str = Field(min_length=1, max_length=100)
    type: Literal["peak_shaving", "valley_filling"]
    start: dt.datetime = Field(description="local time, on a 15-minute boundary")
    end: dt.datetime = Field(description="local time, after start, on a 15-minute boundary")
    requested_mw: float = Field(strict=True, gt=0, le=1000,
                                description="[MW] change of aggregate import")
    compensation_yuan_per_kwh: float = Field(strict=True, default=0.0, ge=0, le=100)
    compensation_yuan_per_kw: float = Field(strict=True, default=0.0, ge=0, le=1000,
                                            description="[yuan/kW] per event, on the kW held")
    shortfall_penalty_yuan_per_kwh: float = Field(strict=True, default=0.0, ge=0, le=100)
    notice_hours: float = Field(strict=True, default=24.0, ge=0, le=168)
    sites: list[str] | None = Field(default=None, description=(
        "participants; default (omitted) all"))

    @field_validator("sites")
    @classmethod
    def _each_site_once(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError("an empty list: name at least one site, or leave sites out for "
                             "every site")
        twice = sorted({s for s in v or () if v.count(s) > 1})
        if twice:
            raise ValueError(f"sites {twice} listed more than once")
        return v


class EventFile(StrictModel):
    events: list[EventSpec] = Field(min_length=1)


def load_events(path: str | Path) -> list[EventSpec]:
    """Read and validate a demand-response event file (JSON, see docs/vpp.md)."""
    p = Path(path)
    return validate_document(EventFile, read_document(p, "event file", "json"),
                             f"invalid event file {p}").events


def to_events(specs: list[EventSpec], index: pd.DatetimeIndex, fleet: Fleet) -> tuple[DREvent, ...]:
    """Events on the plan's intervals; errors name events outside the horizon or off the
    15-minute grid, and unknown sites."""
    import pandas as pd

    problems, out = [], []
    known = {s.id for s in fleet.sites}
    step = index[1] - index[0]
    horizon_end = index[-1] + step
    for e in specs:
        s = pd.Timestamp(e.start)
        t = pd.Timestamp(e.end)
        s = s.tz_localize(index.tz) if s.tzinfo is None else s.tz_convert(index.tz)
        t = t.tz_localize(index.tz) if t.tzinfo is None else t.tz_convert(index.tz)
        where = f"event {e.id}"
        if t <= s:
            problems.append(f"{where}: end {t} must be after start {s}")
            continue
        if s < index[0] or t > horizon_end:
            problems.append(f"{where}: {s:%Y-%m-%d %H:%M}-{t:%H:%M} lies outside the planned "
                            f"horizon {index[0]:%Y-%m-%d %H:%M} to {horizon_end:%Y-%m-%d %H:%M}")
            continue
        if (s - index[0]) % step or (t - index[0]) % step:
            problems.append(f"{where}: start and end must be on 15-minute boundaries")
            continue
        unknown = [x for x in (e.sites or []) if x not in known]
        if unknown:
            problems.append(f"{where}: sites {unknown} are not in the fleet")
            continue
        out.append(DREvent(
            e.id, e.type, int((s - index[0]) / step), int((t - index[0]) / step),
            e.requested_mw * 1000.0, e.compensation_yuan_per_kwh, e.compensation_yuan_per_kw,
            e.shortfall_penalty_yuan_per_kwh, tuple(e.sites or ()),
        ))
    twice = sorted({e.id for e in specs if [x.id for x in specs].count(e.id) > 1})
    if twice:
        problems.append(f"event id(s) {twice} used more than once: each event is settled "
                        "by its id")
    problems += _overlaps(out, index)
    if problems:
        raise InvalidInputError(problems, "invalid demand-response events")
    return tuple(out)


def window_text(start: pd.Timestamp, end: pd.Timestamp, day: str = "%Y-%m-%d") -> str:
    """An event window ``[start, end)``: ``2026-07-15 17:00-19:00``, its day's midnight as
    ``24:00``, the end's date when it ends on a later day (``day``: the date format)."""
    import pandas as pd

    same = (end - pd.Timedelta(seconds=1)).date() == start.date()
    until = ("24:00" if (end.hour, end.minute) == (0, 0) else f"{end:%H:%M}") if same \
        else f"{end:{day} %H:%M}"
    return f"{start:{day} %H:%M}-{until}"


def _overlaps(events: list[DREvent], index: pd.DatetimeIndex) -> list[str]:
    """Events that share a site and an interval: a reduction is measured against one
    baseline, so two such events would both be credited with the same kWh."""
    out = []
    step = index[1] - index[0]
    for i, a in enumerate(events):
        for b in events[i + 1:]:
            lo, hi = max(a.start, b.start), min(a.end, b.end)
            if lo >= hi:
                continue
            if a.participants and b.participants:
                shared = set(a.participants) & set(b.participants)
                if not shared:
                    continue
            else:
                shared = set(a.participants or b.participants) or {"every site"}
            out.append(f"events {a.name} and {b.name} overlap at "
                       f"{window_text(index[lo], index[hi - 1] + step)} on "
                       f"{', '.join(sorted(shared))}: one reduction against one baseline "
                       "cannot be credited to both; merge them or give them disjoint sites "
                       "or times")
    return out
