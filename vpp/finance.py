"""Storage finance from simulated operation: NPV, IRR and simple payback, with and without
the subsidy.

Cash flows of a site's storage, by year ``y = 0 .. life`` from the start of the simulation:

* year 0: ``-capex = -capex_yuan_per_wh * energy_kwh * 1000``;
* each year: the simulated savings (net cost without storage - net cost with storage, the
  subsidy left out, degradation left out because the capex and the stated life already
  price the wear) minus O&M ``om_frac_per_year * capex``, plus the subsidy paid in that
  year when the subsidy is counted;
* years the simulation did not cover repeat the mean simulated year's savings, without
  subsidy (the 24-month window is what the simulation covers; if it covered less, the
  missing subsidy months are not projected and the report says so).

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
                 ) -> np.ndarray:
    """Cash flows [yuan], year 0 .. life, of one site from its simulated month rows.

    Month by month over the life: a simulated month's savings (energy and demand charge,
    without the subsidy) and subsidy; after the simulated months, the mean simulated month's
    savings and - ``with_subsidy``, in the months of the paid ``window`` (first, last paid
    day) - the mean subsidy of the simulated months inside it. A month simulated for part of
    its days stands for the whole month: its energy savings and subsidy are scaled by
    days in month / days simulated; its demand-charge saving is not (the month is billed on
    its peak either way). Without ``month``/``days`` columns rows are whole months, and
    without ``window`` (or a ``month`` column) no subsidy is projected.
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
    n_sim, n_life = len(m), 12 * fi.life_years
    monthly = np.zeros(n_life)
    monthly[:min(n_sim, n_life)] = savings[:n_life]
    if n_sim:
        monthly[n_sim:] = savings.mean()
    if with_subsidy:
        monthly[:min(n_sim, n_life)] += subsidy[:n_life]
        monthly[n_sim:] += _projected_subsidy(m, subsidy, window, n_life)[n_sim:]
    flows = np.zeros(fi.life_years + 1)
    flows[0] = -capex
    flows[1:] = monthly.reshape(fi.life_years, 12).sum(axis=1) - fi.om_frac_per_year * capex
    return flows


def _projected_subsidy(m: pd.DataFrame, subsidy: np.ndarray,
                       window: tuple[dt.date, dt.date] | None, n_life: int) -> np.ndarray:
    """Per month of the life from the first simulated one: the mean subsidy of the simulated
    months inside ``window`` for the months inside it, else 0 [yuan]."""
    out = np.zeros(n_life)
    if window is None or "month" not in m or not len(m):
        return out
    first = pd.Period(str(m["month"].iloc[0]), freq="M")
    months = pd.period_range(first, periods=n_life, freq="M")
    lo, hi = pd.Period(window[0], freq="M"), pd.Period(window[1], freq="M")
    inside = (months >= lo) & (months <= hi)
    simulated = pd.PeriodIndex(m["month"].astype(str), freq="M")
    paid = (simulated >= lo) & (simulated <= hi)
    if paid.any():
        out[inside] = subsidy[paid].mean()
    return out


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
                 window: tuple[dt.date, dt.date] | None = None) -> dict:
    """NPV [yuan], IRR [-] and payback [years] of one site with and without the subsidy
    (projected over the rest of the paid ``window``, see :func:`annual_flows`), and from
    how many simulated months they are annualised."""
    out: dict[str, float | None] = {"capex_yuan": fi.capex_yuan_per_wh * energy_kwh * 1000.0,
                                    "finance_months": float(len(months))}
    for label, with_sub in (("with_subsidy", True), ("without_subsidy", False)):
        flows = annual_flows(months, energy_kwh, fi, with_sub, window)
        out[f"npv_{label}_yuan"] = npv(fi.discount_rate, flows)
        out[f"irr_{label}"] = irr(flows)
        out[f"payback_{label}_years"] = payback_years(flows)
    return out
