"""Time-of-use tariffs as versioned data, and the price series they give.

A tariff file (TOML, see ``vpp/data/tariffs``) is one *version* of a tariff ``id`` with an
``effective_from`` date and a ``source``. Several versions of one id form its history; the
version in force on a day is the latest whose ``effective_from`` is not after that day, unless
a version is asked for by name (to compare 426号 with 555号, say).
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from models import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

PERIODS = ("peak", "flat", "valley")
MINUTES_PER_DAY = 1440


def _span(text: str, where: str) -> tuple[int, int]:
    if not isinstance(text, str):
        raise InvalidInputError(f"{where}: {text!r} is not 'HH:MM-HH:MM'")
    try:
        a, b = text.split("-")
        ha, ma = (int(x) for x in a.split(":"))
        hb, mb = (int(x) for x in b.split(":"))
    except ValueError:
        raise InvalidInputError(f"{where}: {text!r} is not 'HH:MM-HH:MM'") from None
    start, end = ha * 60 + ma, hb * 60 + mb
    if not 0 <= start < end <= MINUTES_PER_DAY:
        raise InvalidInputError(f"{where}: {text!r} must run forward within 00:00-24:00")
    return start, end


@dataclass(frozen=True)
class Tariff:
    """One version of a time-of-use tariff. Prices in yuan/kWh, charges per month."""

    id: str
    version: str
    name: str
    effective_from: dt.date
    source: str
    illustrative_prices: bool
    prices_yuan_per_kwh: dict[str, float]
    export_price_yuan_per_kwh: float
    demand_yuan_per_kw_month: float
    capacity_yuan_per_kva_month: float
    contract_tolerance: float
    period_by_month: dict[int, np.ndarray]  # month -> period code per minute of day
    critical_multiplier: float
    critical_min_kva: float
    critical_by_month: dict[int, tuple[tuple[int, int], ...]]
    deep_valley_multiplier: float
    deep_valley_holidays: frozenset[str]
    deep_valley_minutes: tuple[tuple[int, int], ...]
    deep_valley_min_kva: float = 0.0

    def describe(self) -> dict:
        """The tariff as plain data, for plans and the CLI."""
        return {
            "id": self.id,
            "version": self.version,
            "name": self.name,
            "effective_from": self.effective_from.isoformat(),
            "source": self.source,
            "illustrative_prices": self.illustrative_prices,
            "prices_yuan_per_kwh": dict(self.prices_yuan_per_kwh),
            "export_price_yuan_per_kwh": self.export_price_yuan_per_kwh,
            "demand_yuan_per_kw_month": self.demand_yuan_per_kw_month,
            "capacity_yuan_per_kva_month": self.capacity_yuan_per_kva_month,
            "contract_tolerance": self.contract_tolerance,
            "critical_peak_multiplier": self.critical_multiplier,
            "critical_peak_min_transformer_kva": self.critical_min_kva,
            "holiday_deep_valley_multiplier": self.deep_valley_multiplier,
            "holiday_deep_valley_min_transformer_kva": self.deep_valley_min_kva,
        }


#: Plausibility bounds of a tariff file's numbers: prices [yuan/kWh] (a price in fen, 97
#: for 0.97, is refused), basic charges [yuan/(kW·month)] and [yuan/(kVA·month)], and the
#: critical-peak (at least 1) and holiday deep-valley (at most 1) multipliers.
MAX_PRICE_YUAN_PER_KWH = 5.0
MAX_BASIC_CHARGE = 200.0
CRITICAL_MULTIPLIER_RANGE = (1.0, 3.0)
DEEP_VALLEY_MULTIPLIER_RANGE = (0.0, 1.0)
#: The keys a tariff file may hold, by table (a misspelt key is an error, not ignored).
KEYS = {
    "": {"id", "version", "name", "effective_from", "source", "illustrative_prices",
         "prices_yuan_per_kwh", "export", "basic_charge", "seasons", "critical_peak",
         "holiday_deep_valley"},
    "prices_yuan_per_kwh": {*PERIODS, "source"},
    "export": {"price_yuan_per_kwh", "source"},
    "basic_charge": {"demand_yuan_per_kw_month", "capacity_yuan_per_kva_month",
                     "contract_tolerance", "source"},
    "seasons": {"name", "months", *PERIODS},
    "critical_peak": {"multiplier", "min_transformer_kva", "source", "windows"},
    "critical_peak.windows": {"months", "hours"},
    "holiday_deep_valley": {"multiplier", "min_transformer_kva", "holidays", "hours", "source"},
}


def holiday_names() -> tuple[str, ...]:
    """The statutory holidays a tariff may name (the ``chinesecalendar`` package's)."""
    import chinese_calendar

    return tuple(h.value for h in chinese_calendar.Holiday)


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def parse_tariff(data: dict, origin: str = "tariff") -> Tariff:
    """Validate a tariff document; one :class:`InvalidInputError` lists every problem: a
    missing or misspelt key, a value of the wrong type or outside its plausible range
    (:data:`MAX_PRICE_YUAN_PER_KWH`, ...), a month outside 1-12, an unknown holiday."""
    problems: list[str] = []

    def need(key: str, kind: type | tuple[type, ...]):
        v = data.get(key)
        if key == "effective_from" and isinstance(v, str):
            problems.append(f"{origin}: effective_from={v!r}: write the date unquoted, e.g. "
                            "effective_from = 2025-06-01 (a TOML date, not a string)")
        elif not isinstance(v, kind):
            what = "a date" if kind is dt.date else "a string"
            problems.append(f"{origin}: {key} missing or not {what}")
        return v

    bad_tables: set[str] = set()

    def table(key: str) -> dict:
        v = data.get(key, {})
        if not isinstance(v, dict):
            problems.append(f"{origin}: {key} must be a table ([{key}]), got {v!r}")
            bad_tables.add(key)  # its keys are not listed again as missing
            return {}
        return v

    def known(d: dict, section: str, where: str) -> None:
        extra = sorted(set(d) - KEYS[section])
        if extra:
            problems.append(f"{where}: unknown key(s) {', '.join(extra)}; allowed "
                            f"{', '.join(sorted(KEYS[section]))}")

    def months_of(d: dict, where: str) -> list[int]:
        out = []
        for m in d.get("months", []):
            if isinstance(m, int) and not isinstance(m, bool) and 1 <= m <= 12:
                out.append(m)
            else:
                problems.append(f"{where}: months contains {m!r}: allowed whole numbers 1-12")
        return out

    known(data, "", origin)
    tid, version, name, source = (need(k, str) for k in ("id", "version", "name", "source"))
    eff = need("effective_from", dt.date)
    prices = table("prices_yuan_per_kwh")
    known(prices, "prices_yuan_per_kwh", f"{origin}: prices_yuan_per_kwh")
    for p in PERIODS if "prices_yuan_per_kwh" not in bad_tables else ():
        v = prices.get(p)
        if not _number(v) or not 0 <= v <= MAX_PRICE_YUAN_PER_KWH:
            problems.append(f"{origin}: prices_yuan_per_kwh.{p}={v!r}: allowed range "
                            f"[0, {MAX_PRICE_YUAN_PER_KWH:g}] yuan/kWh")
    export_table = table("export")
    known(export_table, "export", f"{origin}: export")
    export = export_table.get("price_yuan_per_kwh")
    if "export" not in bad_tables and (not _number(export)
                                       or not 0 <= export <= MAX_PRICE_YUAN_PER_KWH):
        problems.append(f"{origin}: export.price_yuan_per_kwh={export!r}: allowed range "
                        f"[0, {MAX_PRICE_YUAN_PER_KWH:g}] yuan/kWh")
    basic = table("basic_charge")
    known(basic, "basic_charge", f"{origin}: basic_charge")
    for k, unit in (() if "basic_charge" in bad_tables else (
            ("demand_yuan_per_kw_month", "yuan/(kW·month)"),
            ("capacity_yuan_per_kva_month", "yuan/(kVA·month)"))):
        v = basic.get(k)
        if not _number(v) or not 0 <= v <= MAX_BASIC_CHARGE:
            problems.append(f"{origin}: basic_charge.{k}={v!r}: allowed range "
                            f"[0, {MAX_BASIC_CHARGE:g}] {unit}")
    tolerance = basic.get("contract_tolerance")
    if "basic_charge" not in bad_tables and (not _number(tolerance)
                                             or not 1.0 <= tolerance <= 2.0):
        problems.append(f"{origin}: basic_charge.contract_tolerance={tolerance!r}: allowed "
                        "range [1, 2] (share of the contracted demand)")
    period_by_month: dict[int, np.ndarray] = {}
    seasons = data.get("seasons", [])
    if not isinstance(seasons, list) or not all(isinstance(x, dict) for x in seasons):
        problems.append(f"{origin}: seasons must be [[seasons]] tables")
        seasons = []
    for i, season in enumerate(seasons):
        where = f"{origin}: seasons[{i}] ({season.get('name', '?')})"
        known(season, "seasons", where)
        codes = np.full(MINUTES_PER_DAY, -1, dtype=np.int8)
        try:
            for code, period in enumerate(PERIODS):
                for text in season.get(period, []):
                    a, b = _span(text, where)
                    if np.any(codes[a:b] >= 0):
                        problems.append(f"{where}: {period} {text} overlaps another period")
                    codes[a:b] = code
        except InvalidInputError as exc:
            problems += exc.problems
            continue
        gaps = np.flatnonzero(codes < 0)
        if gaps.size:
            problems.append(
                f"{where}: periods leave {gaps.size} minutes of the day uncovered "
                f"(first at {gaps[0] // 60:02d}:{gaps[0] % 60:02d})"
            )
        for month in months_of(season, where):
            if month in period_by_month:
                problems.append(f"{where}: month {month} already belongs to another season")
            period_by_month[month] = codes
    missing = sorted(set(range(1, 13)) - set(period_by_month))
    if missing:
        problems.append(f"{origin}: seasons do not cover months {missing}")
    crit = table("critical_peak")
    known(crit, "critical_peak", f"{origin}: critical_peak")
    crit_by_month: dict[int, list[tuple[int, int]]] = {}
    for i, w in enumerate(crit.get("windows", [])):
        where = f"{origin}: critical_peak.windows[{i}]"
        if not isinstance(w, dict):
            problems.append(f"{where} must be a table")
            continue
        known(w, "critical_peak.windows", where)
        for month in months_of(w, where):
            for text in w.get("hours", []):
                try:
                    crit_by_month.setdefault(month, []).append(_span(text, where))
                except InvalidInputError as exc:
                    problems += exc.problems
    deep = table("holiday_deep_valley")
    known(deep, "holiday_deep_valley", f"{origin}: holiday_deep_valley")
    for section, tbl, (lo, hi) in (("critical_peak", crit, CRITICAL_MULTIPLIER_RANGE),
                                   ("holiday_deep_valley", deep, DEEP_VALLEY_MULTIPLIER_RANGE)):
        kva = tbl.get("min_transformer_kva", 0.0)
        if not _number(kva) or kva < 0:
            problems.append(f"{origin}: {section}.min_transformer_kva={kva!r}: need a number "
                            ">= 0 [kVA]")
        mult = tbl.get("multiplier", 1.0)
        if not _number(mult) or not lo <= mult <= hi:
            problems.append(f"{origin}: {section}.multiplier={mult!r}: allowed range "
                            f"[{lo:g}, {hi:g}] (of the {'peak' if hi > 1 else 'valley'} price)")
    allowed_holidays = holiday_names()
    for h in deep.get("holidays", []):
        if h not in allowed_holidays:
            problems.append(f"{origin}: holiday_deep_valley.holidays contains {h!r}: allowed "
                            f"{', '.join(allowed_holidays)}")
    deep_minutes = []
    for text in deep.get("hours", []):
        try:
            deep_minutes.append(_span(text, f"{origin}: holiday_deep_valley"))
        except InvalidInputError as exc:
            problems += exc.problems
    if problems:
        raise InvalidInputError(problems, "invalid tariff")
    return Tariff(
        id=tid,
        version=version,
        name=name,
        effective_from=eff,
        source=source,
        illustrative_prices=bool(data.get("illustrative_prices", False)),
        prices_yuan_per_kwh={p: float(prices[p]) for p in PERIODS},
        export_price_yuan_per_kwh=float(export),
        demand_yuan_per_kw_month=float(basic["demand_yuan_per_kw_month"]),
        capacity_yuan_per_kva_month=float(basic["capacity_yuan_per_kva_month"]),
        contract_tolerance=float(tolerance),
        period_by_month=period_by_month,
        critical_multiplier=float(crit.get("multiplier", 1.0)),
        critical_min_kva=float(crit.get("min_transformer_kva", 0.0)),
        critical_by_month={k: tuple(v) for k, v in crit_by_month.items()},
        deep_valley_multiplier=float(deep.get("multiplier", 1.0)),
        deep_valley_holidays=frozenset(deep.get("holidays", [])),
        deep_valley_minutes=tuple(deep_minutes),
        deep_valley_min_kva=float(deep.get("min_transformer_kva", 0.0)),
    )


class TariffBook:
    """All tariff versions found in a folder of TOML files, by id and effective date."""

    def __init__(self, tariffs: list[Tariff]) -> None:
        self._by_id: dict[str, list[Tariff]] = {}
        for t in tariffs:
            self._by_id.setdefault(t.id, []).append(t)
        for versions in self._by_id.values():
            versions.sort(key=lambda t: t.effective_from)

    @classmethod
    def from_dir(cls, folder: Path) -> TariffBook:
        """Read every ``*.toml`` in ``folder``; one error lists the problems of all files."""
        problems: list[str] = []
        tariffs = []
        files = sorted(Path(folder).glob("*.toml"))
        if not files:
            raise InvalidInputError(f"no tariff files (*.toml) in {folder}")
        names: dict[int, str] = {}
        for f in files:
            try:
                tariffs.append(parse_tariff(tomllib.loads(f.read_text("utf-8")), f.name))
                names[id(tariffs[-1])] = f.name
            except InvalidInputError as exc:
                problems += exc.problems
            except tomllib.TOMLDecodeError as exc:
                problems.append(f"{f.name}: not valid TOML: {exc}")
        if problems:
            raise InvalidInputError(problems, "invalid tariff files")
        # two versions of one tariff with the same version name or the same effective date:
        # which one applies would depend on the files' names
        for key, what in ((lambda t: (t.id, t.version), "version"),
                          (lambda t: (t.id, t.effective_from), "effective_from")):
            first: dict[tuple, Tariff] = {}
            for t in tariffs:
                if key(t) in first:
                    problems.append(
                        f"{names[id(first[key(t)])]} and {names[id(t)]}: both are tariff "
                        f"{t.id} with {what} {key(t)[1]}; give one file another {what}")
                first.setdefault(key(t), t)
        if problems:
            raise InvalidInputError(problems, "invalid tariff files")
        return cls(tariffs)

    @property
    def ids(self) -> set[str]:
        return set(self._by_id)

    def versions(self, tariff_id: str) -> list[Tariff]:
        """Every version of ``tariff_id``, oldest first."""
        if tariff_id not in self._by_id:
            raise InvalidInputError(
                f"tariff_id={tariff_id!r} unknown; known: {', '.join(sorted(self._by_id))}"
            )
        return list(self._by_id[tariff_id])

    def select(self, tariff_id: str, day: dt.date, version: str | None = None) -> Tariff:
        """The version in force on ``day`` (or the named ``version``)."""
        versions = self.versions(tariff_id)
        if version is not None:
            for t in versions:
                if t.version == version:
                    return t
            names = ", ".join(t.version for t in versions)
            raise InvalidInputError(f"tariff version {version!r} unknown for {tariff_id}: {names}")
        in_force = [t for t in versions if t.effective_from <= day]
        if not in_force:
            first = versions[0].effective_from
            raise InvalidInputError(
                f"no version of tariff {tariff_id} in force on {day}: the earliest starts {first}"
            )
        return in_force[-1]


def price_series(
    book: TariffBook,
    tariff_id: str,
    index: pd.DatetimeIndex,
    transformer_kva: float,
    version: str | None = None,
) -> pd.DataFrame:
    """Prices for every interval of ``index`` (interval-start labels, tz-aware).

    Parameters
    ----------
    transformer_kva : float
        Decides whether critical-peak and holiday deep-valley pricing apply [kVA].
    version : str, optional
        Force one tariff version for the whole range.

    Returns
    -------
    DataFrame indexed like ``index`` with ``period`` (peak, flat, valley, critical_peak,
    deep_valley), ``import_price_yuan_per_kwh``, ``export_price_yuan_per_kwh`` and
    ``tariff_version``.

    Raises
    ------
    InvalidInputError
        Index not tz-aware or not regular, or a period boundary falls inside an interval.
    """
    import pandas as pd

    from forecasts.calendar import holiday_break

    if index.tz is None:
        raise InvalidInputError("price index must be timezone-aware (Asia/Shanghai)")
    if len(index) == 0:
        raise InvalidInputError("price index is empty")
    local = index.tz_convert("Asia/Shanghai")
    step = _step_minutes(local)
    minute = (local.hour * 60 + local.minute).to_numpy()
    n = len(local)
    period = np.empty(n, dtype=object)
    imp = np.empty(n)
    exp = np.empty(n)
    ver = np.empty(n, dtype=object)
    days, day_of = np.unique(local.normalize().tz_localize(None), return_inverse=True)
    order = np.argsort(day_of, kind="stable")
    bounds = np.searchsorted(day_of[order], np.arange(len(days) + 1))
    offsets = np.arange(step)
    for k, day in enumerate(days):
        sel = order[bounds[k]:bounds[k + 1]]
        date = pd.Timestamp(day).date()
        t = book.select(tariff_id, date, version)
        codes = t.period_by_month[date.month]
        mins = minute[sel]
        blocks = codes[np.minimum(mins[:, None] + offsets, MINUTES_PER_DAY - 1)]
        split = np.flatnonzero((blocks != blocks[:, :1]).any(axis=1))
        if len(split):
            m0 = mins[split[0]]
            raise InvalidInputError(
                f"tariff {t.version}: a period boundary falls inside the {step}-minute "
                f"interval starting {m0 // 60:02d}:{m0 % 60:02d} on {date}; use shorter "
                "intervals"
            )
        names = np.array(PERIODS, dtype=object)[codes[mins]]
        price = np.array([t.prices_yuan_per_kwh[p] for p in names])
        critical = t.critical_by_month.get(date.month, ()) if (
            transformer_kva >= t.critical_min_kva) else ()
        deep = t.deep_valley_minutes if (t.deep_valley_holidays & holiday_break(date)
                                         and transformer_kva >= t.deep_valley_min_kva) else ()
        for a, b in (*critical, *deep):
            inside = [x for x in (a, b) if np.any((mins < x) & (x < mins + step))]
            if inside:
                x = inside[0]
                raise InvalidInputError(
                    f"tariff {t.version}: a period boundary ({x // 60:02d}:{x % 60:02d}) falls "
                    f"inside a {step}-minute interval on {date}; use shorter intervals"
                )
        prices = t.prices_yuan_per_kwh
        overlays = ((critical, "critical_peak", prices["peak"] * t.critical_multiplier),
                    (deep, "deep_valley", prices["valley"] * t.deep_valley_multiplier))
        for windows, name, value in overlays:
            for a, b in windows:
                hit = (mins >= a) & (mins < b)
                names[hit] = name
                price[hit] = value
        period[sel], imp[sel] = names, price
        exp[sel], ver[sel] = t.export_price_yuan_per_kwh, t.version
    return pd.DataFrame(
        {
            "period": period,
            "import_price_yuan_per_kwh": imp,
            "export_price_yuan_per_kwh": exp,
            "tariff_version": ver,
        },
        index=index,
    )


def _step_minutes(index: pd.DatetimeIndex) -> int:
    if len(index) < 2:
        return 15
    diffs = np.asarray((index[1:] - index[:-1]).total_seconds()) / 60.0
    if np.any(diffs != diffs[0]) or diffs[0] < 1 or MINUTES_PER_DAY % diffs[0]:
        raise InvalidInputError("price index must be regular with a step dividing one day")
    return int(diffs[0])
