"""The Changzhou storage subsidy as versioned policy data, and the rate it pays.

常政办发〔2024〕32号: new-type storage stations of installed capacity >= 0.5 MW earn at most
0.3 yuan per kWh discharged, from the month after grid connection, for at most 2 consecutive
years. Read here as: eligible when rated power >= ``min_power_kw``; paid from 00:00 on the
first day of the month after the grid-connection date, for ``duration_months`` months
(connection on 2025-03-17: paid 2025-04-01 to 2027-03-31), on the discharge the policy file's
counting rule names (:data:`RULES`; the text itself names none).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from models import InvalidInputError
from vpp.sites import read_document

#: Counting rules: which discharge earns the reward (see the policy file).
RULES = ("all", "peak_flat", "net_of_grid_charging", "annual_hours_cap")
#: Tariff periods whose discharge counts under ``peak_flat``.
PAID_PERIODS = ("peak", "critical_peak", "flat")

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class SubsidyPolicy:
    """Policy parameters; rates in yuan/kWh, power in kW."""

    id: str
    version: str
    name: str
    effective_from: dt.date
    source: str
    min_power_kw: float
    rate_yuan_per_kwh: float
    max_rate_yuan_per_kwh: float
    duration_months: int
    rule: str = "all"
    annual_hours: float | None = None
    rule_source: str = ""

    def describe(self) -> dict:
        return {
            "id": self.id,
            "version": self.version,
            "source": self.source,
            "min_power_kw": self.min_power_kw,
            "rate_yuan_per_kwh": self.rate_yuan_per_kwh,
            "duration_months": self.duration_months,
            "counting_rule": self.rule,
            "annual_hours_cap": self.annual_hours if self.rule == "annual_hours_cap" else None,
            "counting_source": self.rule_source,
        }


#: Plausibility bound of a policy's rates [yuan/kWh] (a rate in fen, 30 for 0.3, is refused).
MAX_RATE_YUAN_PER_KWH = 2.0
#: The keys a policy file may hold (a misspelt key is an error, not ignored).
POLICY_KEYS = {"id", "version", "name", "effective_from", "source", "min_power_kw",
               "rate_yuan_per_kwh", "max_rate_yuan_per_kwh", "start", "duration_months",
               "counting"}
COUNTING_KEYS = {"rule", "annual_hours", "source"}


def parse_policy(data: dict, origin: str = "policy") -> SubsidyPolicy:
    """Validate a subsidy policy document, listing every problem in one error."""
    problems = []
    for keys, table, where in ((POLICY_KEYS, data, origin),
                               (COUNTING_KEYS, data.get("counting", {}), f"{origin}: counting")):
        extra = sorted(set(table) - keys) if isinstance(table, dict) else []
        if extra:
            problems.append(f"{where}: unknown key(s) {', '.join(extra)}; allowed "
                            f"{', '.join(sorted(keys))}")
    if not isinstance(data.get("counting", {}), dict):
        problems.append(f"{origin}: counting must be a table ([counting])")
        data = {**data, "counting": {}}
    for k in ("id", "version", "name", "source"):
        if not isinstance(data.get(k), str):
            problems.append(f"{origin}: {k} missing (string)")
    eff = data.get("effective_from")
    if isinstance(eff, str):
        problems.append(f"{origin}: effective_from={eff!r}: write the date unquoted, e.g. "
                        "effective_from = 2024-07-11 (a TOML date, not a string)")
    elif not isinstance(eff, dt.date):
        problems.append(f"{origin}: effective_from missing (date)")
    if data.get("start") != "first-day-of-next-month":
        problems.append(f"{origin}: start={data.get('start')!r}: only 'first-day-of-next-month'")
    mx = data.get("max_rate_yuan_per_kwh")
    rate = data.get("rate_yuan_per_kwh")
    if not _number(mx) or not 0 <= mx <= MAX_RATE_YUAN_PER_KWH:
        problems.append(f"{origin}: max_rate_yuan_per_kwh={mx!r}: allowed range "
                        f"[0, {MAX_RATE_YUAN_PER_KWH:g}] yuan/kWh")
    elif not _number(rate) or not 0 <= rate <= mx:
        problems.append(f"{origin}: rate_yuan_per_kwh={rate!r}: allowed range [0, {mx}]")
    mp = data.get("min_power_kw")
    if not _number(mp) or mp < 0:
        problems.append(f"{origin}: min_power_kw={mp!r}: need a number >= 0")
    dur = data.get("duration_months")
    if not isinstance(dur, int) or isinstance(dur, bool) or dur <= 0:
        problems.append(f"{origin}: duration_months={dur!r}: need a whole number > 0")
    counting = data.get("counting", {})
    rule = counting.get("rule", "all")
    if rule not in RULES:
        problems.append(f"{origin}: counting.rule={rule!r}: allowed {', '.join(RULES)}")
    hours = counting.get("annual_hours")
    if rule == "annual_hours_cap" and (not _number(hours)
                                       or not 0 < hours <= 8760):
        problems.append(f"{origin}: counting.annual_hours={hours!r}: allowed range (0, 8760] "
                        "h with rule annual_hours_cap")
    if problems:
        raise InvalidInputError(problems, "invalid subsidy policy")
    return SubsidyPolicy(
        id=data["id"],
        version=data["version"],
        name=data["name"],
        effective_from=data["effective_from"],
        source=data["source"],
        min_power_kw=float(mp),
        rate_yuan_per_kwh=float(rate),
        max_rate_yuan_per_kwh=float(mx),
        duration_months=dur,
        rule=rule,
        annual_hours=float(hours) if isinstance(hours, int | float) else None,
        rule_source=str(counting.get("source", "")),
    )


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def model_rule(policy: SubsidyPolicy) -> str:
    """The counting form the dispatch model uses for ``policy``'s rule
    (:mod:`models.components.subsidy`): per-kWh rates carry ``all`` and ``peak_flat``."""
    return "net_of_grid_charging" if policy.rule == "net_of_grid_charging" else "discharge"


def annual_budget_kwh(policy: SubsidyPolicy, power_kw: float,
                      paid_this_year_kwh: float = 0.0) -> float | None:
    """What is left of the year's rewarded discharge under ``annual_hours_cap`` [kWh]
    (``annual_hours`` x rated power, less what was paid this year); None for other rules."""
    if policy.rule != "annual_hours_cap":
        return None
    return max(0.0, policy.annual_hours * power_kw - paid_this_year_kwh)


def load_policy(path: Path) -> SubsidyPolicy:
    """Read and validate a subsidy policy TOML file."""
    return parse_policy(read_document(path, "subsidy policy file"), Path(path).name)


class PolicyBook:
    """Every version of the subsidy policy, oldest first.

    A station's entitlement follows the version in force on its first paid day, the first
    day of the month after grid connection (a station connected before the first version
    takes the first one): a later version changes the terms of stations connected after it,
    not of those already being paid (:meth:`for_connection`).
    """

    def __init__(self, versions: list[SubsidyPolicy]) -> None:
        if not versions:
            raise InvalidInputError("no subsidy policy version")
        self.versions = sorted(versions, key=lambda p: p.effective_from)

    @classmethod
    def from_files(cls, paths: list[Path]) -> PolicyBook:
        """Read the policy files (every problem of every file in one error; two versions on
        one date name both files)."""
        problems: list[str] = []
        found: list[tuple[SubsidyPolicy, str]] = []
        for path in paths:
            try:
                found.append((load_policy(path), Path(path).name))
            except InvalidInputError as exc:
                problems += exc.problems
        by_day: dict[dt.date, str] = {}
        for pol, name in found:
            if pol.effective_from in by_day:
                problems.append(f"{by_day[pol.effective_from]} and {name}: both are subsidy "
                                f"policy versions from {pol.effective_from}; give one file "
                                "another effective_from")
            by_day.setdefault(pol.effective_from, name)
        if problems:
            raise InvalidInputError(problems, "invalid subsidy policy files")
        return cls([p for p, _ in found])

    @property
    def latest(self) -> SubsidyPolicy:
        """The newest version (its maximum rate bounds a rate given as an option)."""
        return self.versions[-1]

    def for_connection(self, grid_connection: dt.date | None) -> SubsidyPolicy:
        """The version whose terms a station connected on ``grid_connection`` is paid on:
        the one in force on its first paid day; the latest without a connection date."""
        if grid_connection is None:
            return self.latest
        first = _add_months(grid_connection.replace(day=1), 1)
        in_force = [p for p in self.versions if p.effective_from <= first]
        return in_force[-1] if in_force else self.versions[0]


def _add_months(day: dt.date, months: int) -> dt.date:
    y, m = divmod(day.month - 1 + months, 12)
    return dt.date(day.year + y, m + 1, 1)


def subsidy_window(
    policy: SubsidyPolicy, power_kw: float, grid_connection: dt.date
) -> tuple[dt.date, dt.date] | None:
    """First and last paid day (both inclusive), or None when the station is not eligible
    (below ``min_power_kw``, or its window over before the policy took effect). A station
    connected before the policy's ``effective_from`` is paid from that day to the end of its
    window."""
    if power_kw < policy.min_power_kw:
        return None
    first = _add_months(grid_connection.replace(day=1), 1)
    last = _add_months(first, policy.duration_months) - dt.timedelta(days=1)
    first = max(first, policy.effective_from)
    return (first, last) if first <= last else None


def subsidy_rate_series(
    policy: SubsidyPolicy,
    power_kw: float,
    grid_connection: dt.date,
    index: pd.DatetimeIndex,
    rate_yuan_per_kwh: float | None = None,
    periods: np.ndarray | None = None,
) -> pd.Series:
    """Subsidy per kWh discharged for each interval of ``index`` [yuan/kWh], 0 outside.

    Parameters
    ----------
    power_kw : float
        Rated (installed) storage power [kW].
    grid_connection : date
        Date the station was connected (并网投运).
    index : DatetimeIndex
        Interval-start labels, timezone-aware; an interval counts on its local start date.
    rate_yuan_per_kwh : float, optional
        Rate to apply in [0, policy maximum]; defaults to the policy's rate.
    periods : array of str, optional
        The tariff period of each interval; under the ``peak_flat`` rule only peak, critical
        peak and flat intervals are paid (required with that rule).
    """
    if index.tz is None:
        raise InvalidInputError("subsidy index must be timezone-aware (Asia/Shanghai)")
    rate = policy.rate_yuan_per_kwh if rate_yuan_per_kwh is None else float(rate_yuan_per_kwh)
    if not 0.0 <= rate <= policy.max_rate_yuan_per_kwh:
        raise InvalidInputError(
            f"subsidy_rate_yuan_per_kwh={rate}: allowed range [0, "
            f"{policy.max_rate_yuan_per_kwh}] under {policy.version}"
        )
    window = subsidy_window(policy, power_kw, grid_connection)
    values = np.zeros(len(index))
    if window is not None:
        days = np.array(index.tz_convert("Asia/Shanghai").date)
        values[(days >= window[0]) & (days <= window[1])] = rate
    if policy.rule == "peak_flat":
        if periods is None:
            raise InvalidInputError("the peak_flat subsidy rule needs each interval's tariff "
                                    "period")
        values[~np.isin(np.asarray(periods, dtype=object), PAID_PERIODS)] = 0.0
    import pandas as pd

    return pd.Series(values, index=index, name="subsidy_yuan_per_kwh")
