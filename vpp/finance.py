"""Storage finance from simulated operation: NPV, IRR and simple payback, with and without
the subsidy.

Cash flows of a site's storage, by year ``y = 0 .. life`` of the investment, whose life
starts in the month of the battery's grid connection (or, without a connection date, the
first simulated month):

* year 0: ``-capex = -capex_yuan_per_wh * energy_kwh * 1000``;
* each month of the life: the simulated savings where that month was simulated (net cost
  without storage - net cost with storage, the subsidy left out, degradation left out
  because the capex and the stated life already price the wear), plus the subsidy paid that
  month when the subsidy is counted;
* months of the life the simulation did not cover (before it, for a station already
  running; after it) repeat the mean savings of the simulated months with the battery there
  the whole month, plus, inside the paid window, the mean subsidy of the simulated months
  inside it; simulated months before the connection carry no battery and are left out;
* each year: the months' sum minus O&M ``om_frac_per_year * capex``.

``savings`` include what the shiftable loads save: the "without storage" case of the
simulation is the unmanaged site (:func:`vpp.planning.baseline`).
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from models import InvalidInputError

DEFAULT_FILE = Path(__file__).resolve().parent / "data" / "finance-defaults.toml"


@dataclass(frozen=True)
class FinanceInputs:
    """Investment assumptions (defaults: ``vpp/data/finance-defaults.toml``).

    Parameters
    ----------
    capex_yuan_per_wh : float
        Installed cost per Wh of nameplate energy [yuan/Wh], in (0, 5].
    life_years : int
        Economic life [years], in [1, 30].
    discount_rate : float
        Real discount rate [-/year], in [0, 0.5].
    om_frac_per_year : float
        Operation and maintenance per year as a share of capex [-], in [0, 0.2].
    """

    capex_yuan_per_wh: float = 0.7
    life_years: int = 10
    discount_rate: float = 0.06
    om_frac_per_year: float = 0.02
    source: str = "defaults"

    def validate(self) -> None:
        problems = []
        if not 0 < self.capex_yuan_per_wh <= 5:
            problems.append(f"capex_yuan_per_wh={self.capex_yuan_per_wh}: allowed (0, 5]")
        if not 1 <= self.life_years <= 30:
            problems.append(f"life_years={self.life_years}: allowed [1, 30]")
        if not 0 <= self.discount_rate <= 0.5:
            problems.append(f"discount_rate={self.discount_rate}: allowed [0, 0.5]")
        if not 0 <= self.om_frac_per_year <= 0.2:
            problems.append(f"om_frac_per_year={self.om_frac_per_year}: allowed [0, 0.2]")
        if problems:
            raise InvalidInputError(problems, "invalid finance inputs")


def load_finance_inputs(path: str | Path = DEFAULT_FILE, **overrides) -> FinanceInputs:
    """Read the finance defaults file and apply ``overrides`` (None values ignored)."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (FileNotFoundError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInputError(f"finance file {p}: {exc}") from None
    fields = {k: data[k] for k in ("capex_yuan_per_wh", "life_years", "discount_rate",
                                   "om_frac_per_year") if k in data}
    fields.update({k: v for k, v in overrides.items() if v is not None})
    fi = FinanceInputs(**fields, source=f"{p.name} ({data.get('source', '')})")
    fi.validate()
    return fi


def npv(rate: float, flows: np.ndarray) -> float:
    """Net present value [yuan] of ``flows[y]`` paid at the end of year ``y``."""
    years = np.arange(len(flows))
    return float(np.sum(np.asarray(flows) / (1.0 + rate) ** years))


def irr(flows: np.ndarray) -> float | None:
    """Internal rate of return [-/year], or None when NPV does not change sign on
    (-0.99, 10)."""
    f = np.asarray(flows, dtype=float)
    lo, hi = -0.99, 10.0
    a, b = npv(lo, f), npv(hi, f)
    if a * b > 0:
        return None
    return float(brentq(lambda r: npv(r, f), lo, hi, xtol=1e-10))


def payback_years(flows: np.ndarray) -> float | None:
    """Years until the cumulative (undiscounted) cash flow turns non-negative, linear within
    the year; None if it never does within the life."""
    cum = np.cumsum(np.asarray(flows, dtype=float))
    for y in range(1, len(cum)):
        if cum[y] >= 0:
            return float(y - 1 + (-cum[y - 1]) / (cum[y] - cum[y - 1]))
    return None


def annual_flows(months: pd.DataFrame, energy_kwh: float, fi: FinanceInputs,
                 with_subsidy: bool, window: tuple[dt.date, dt.date] | None = None,
                 connected: dt.date | None = None) -> np.ndarray:
    """Cash flows [yuan], year 0 .. life, of one site from its simulated month rows.

    Month by month over the life, from the month of ``connected`` (the battery's grid
    connection; default the first simulated month): a simulated month's savings (energy and
    demand charge, without the subsidy) and subsidy; the other months, the mean savings of
    the simulated months the battery was there for whole, and - ``with_subsidy``, in the
    months of the paid ``window`` (first, last paid day) - the simulated months' subsidy per
    whole window month, times the share of the month's days in the window. A month
    simulated for part of its days stands for the whole month: its energy savings and
    subsidy are scaled by days in month / days simulated; its demand-charge saving is not
    (the month is billed on its peak either way). Without
    ``month``/``days`` columns rows are whole months from the start of the life, and without
    ``window`` (or a ``month`` column) no subsidy is projected.

    Raises
    ------
    InvalidInputError
        No simulated month has the battery (connected after the simulated period), or every
        simulated month lies after the life.
    """
    capex = fi.capex_yuan_per_wh * energy_kwh * 1000.0
    m = months.reset_index(drop=True)
    scale = _month_scale(m)
    total = (m["net_cost_without_storage_yuan"] - m["net_cost_yuan"]
             - m["subsidy_yuan"] + m["degradation_cost_yuan"]).to_numpy(dtype=float)
    demand = ((m["demand_charge_without_storage_yuan"] - m["demand_charge_yuan"])
              .to_numpy(dtype=float) if {"demand_charge_yuan",
                                         "demand_charge_without_storage_yuan"} <= set(m)
              else np.zeros(len(m)))
    savings = scale * (total - demand) + demand
    subsidy = scale * m["subsidy_yuan"].to_numpy(dtype=float)
    n_life = 12 * fi.life_years
    first, pos = _life_positions(m, connected)
    partial = connected is not None and connected.day > 1
    whole = _whole_months(pos, connected)
    if not whole.any():
        whole = pos >= 0
    if len(m) and not whole.any():
        raise InvalidInputError(f"the battery is connected on {connected}, after the "
                                "simulated months: nothing to annualise; simulate months "
                                "after the connection")
    live = (pos >= 0) & (pos < n_life)
    if len(m) and not live.any():
        raise InvalidInputError(f"the simulated months lie after the {fi.life_years}-year "
                                f"life that starts in {first}: nothing to annualise")
    if partial and "days" in m:  # the connection month: its battery days, not all its days
        at = np.flatnonzero(pos == 0)
        if len(at):
            i = int(at[0])
            tail = pd.Period(connected, freq="M").days_in_month - connected.day + 1
            days = float(m["days"].iloc[i])
            factor = tail / max(min(days, tail), 1.0)
            savings[i] = factor * (total[i] - demand[i]) + demand[i]
            subsidy[i] = factor * m["subsidy_yuan"].iloc[i]
    monthly = np.full(n_life, savings[whole].mean() if whole.any() else 0.0)
    monthly[pos[live]] = savings[live]
    if with_subsidy:
        paid = _projected_subsidy(m, subsidy, window, first, n_life)
        paid[pos[live]] = subsidy[live]
        monthly += paid
    flows = np.zeros(fi.life_years + 1)
    flows[0] = -capex
    flows[1:] = monthly.reshape(fi.life_years, 12).sum(axis=1) - fi.om_frac_per_year * capex
    return flows


def _life_positions(m: pd.DataFrame, connected: dt.date | None,
                    ) -> tuple[pd.Period | None, np.ndarray]:
    """The first month of the life and each month row's position in it (negative: before
    it); rows in order from position 0 without a ``month`` column."""
    if "month" not in m or not len(m):
        return None, np.arange(len(m))
    simulated = pd.PeriodIndex(m["month"].astype(str), freq="M")
    first = pd.Period(connected, freq="M") if connected is not None else simulated[0]
    return first, np.array([(p - first).n for p in simulated], dtype=np.int64)


def _whole_months(pos: np.ndarray, connected: dt.date | None) -> np.ndarray:
    """Which month rows (by life position) had the battery the whole month: from the life's
    first month, or after it when the connection fell mid-month."""
    return pos > 0 if connected is not None and connected.day > 1 else pos >= 0


def battery_months(months: pd.DataFrame, connected: dt.date | None) -> int:
    """Simulated months the battery was there for whole (after the month of a mid-month
    connection): what finance is annualised from."""
    _, pos = _life_positions(months.reset_index(drop=True), connected)
    return int(np.sum(_whole_months(pos, connected)))


def _projected_subsidy(m: pd.DataFrame, subsidy: np.ndarray,
                       window: tuple[dt.date, dt.date] | None, first: pd.Period | None,
                       n_life: int) -> np.ndarray:
    """Per month of the life from ``first``: the simulated months' subsidy per whole month
    of the window, times the share of each month's days inside ``window`` (a window opened
    on the 11th pays 21/31 of July), else 0 [yuan]."""
    out = np.zeros(n_life)
    if window is None or first is None:
        return out
    months = pd.period_range(first, periods=n_life, freq="M")
    simulated = pd.PeriodIndex(m["month"].astype(str), freq="M")
    paid = _window_share(simulated, window)
    if paid.sum() > 0:
        out = subsidy[paid > 0].sum() / paid.sum() * _window_share(months, window)
    return out


def _window_share(months: pd.PeriodIndex, window: tuple[dt.date, dt.date]) -> np.ndarray:
    """Share of each month's days [-] that lie in ``window`` (first and last day)."""
    first = np.array([p.start_time.date() for p in months])
    last = np.array([p.end_time.date() for p in months])
    lo = np.maximum(first, window[0])
    hi = np.minimum(last, window[1])
    days = np.array([(b - a).days + 1 for a, b in zip(lo, hi, strict=True)], dtype=float)
    return np.clip(days, 0.0, None) / months.days_in_month.to_numpy(dtype=float)


def annualisation_warning(months_simulated: int, days_simulated: int | None = None,
                          ) -> str | None:
    """The warning finance from fewer than 12 simulated months must carry (a season's
    savings taken for a year's), or None. ``days_simulated``: named instead of the months
    when the run is shorter than a month."""
    if months_simulated >= 12:
        return None
    span = (f"{days_simulated} simulated day(s)" if days_simulated is not None
            and days_simulated < 28 else f"{months_simulated} simulated month(s)")
    return (f"WARNING: NPV, IRR and payback come from {span} annualised: the season "
            "simulated stands for the whole year, so they can be far off (a summer is not a "
            "year). Simulate 12 months or more for finance.")


def _month_scale(m: pd.DataFrame) -> np.ndarray:
    """Per month row, calendar days of its month / days simulated in it: a month simulated
    for part of its days stands for the whole month (1 without ``month``/``days``)."""
    if "month" not in m or "days" not in m:
        return np.ones(len(m))
    full = pd.PeriodIndex(m["month"].astype(str), freq="M").days_in_month.to_numpy()
    days = m["days"].to_numpy(dtype=float)
    return np.where(days > 0, full / np.maximum(days, 1.0), 1.0)


def site_finance(months: pd.DataFrame, energy_kwh: float, fi: FinanceInputs,
                 window: tuple[dt.date, dt.date] | None = None,
                 connected: dt.date | None = None) -> dict:
    """NPV [yuan], IRR [-] and payback [years] of one site with and without the subsidy
    (projected over the rest of the paid ``window``, see :func:`annual_flows`), valued at
    the start of the life (the month of ``connected``, ``life_from``), and from how many
    simulated months with the battery they are annualised. A battery connected after the
    simulated months gets NaN and a ``finance_note``. "Without the subsidy" is the same
    operation with the subsidy's money taken out (the dispatch still chases it; the
    sensitivity table re-plans without it)."""
    capex = fi.capex_yuan_per_wh * energy_kwh * 1000.0
    first, _ = _life_positions(months.reset_index(drop=True), connected)
    out: dict[str, float | str | None] = {
        "capex_yuan": capex, "finance_months": float(battery_months(months, connected)),
        "life_from": str(first) if first is not None else "", "finance_note": ""}
    try:
        annual_flows(months, energy_kwh, fi, False, window, connected)
    except InvalidInputError as exc:
        nan = float("nan")
        out["finance_note"] = exc.problems[0]
        for label in ("with_subsidy", "without_subsidy"):
            out.update({f"npv_{label}_yuan": nan, f"irr_{label}": nan,
                        f"payback_{label}_years": nan})
        return out
    for label, with_sub in (("with_subsidy", True), ("without_subsidy", False)):
        flows = annual_flows(months, energy_kwh, fi, with_sub, window, connected)
        out[f"npv_{label}_yuan"] = npv(fi.discount_rate, flows)
        out[f"irr_{label}"] = irr(flows)
        out[f"payback_{label}_years"] = payback_years(flows)
    return out
