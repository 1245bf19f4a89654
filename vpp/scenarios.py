"""Scenario sweeps: the same simulation under several subsidy rates and tariff policies, and
the fleet's storage finance in each (the sensitivity table of the pilot report)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vpp.catalog import Catalog
from vpp.finance import FinanceInputs, site_finance
from vpp.simulation import SimulationOptions, SimulationResult, simulate


def tariff_policies(catalog: Catalog, site_ids: list[str] | None) -> list[str]:
    """The tariff versions every one of the sites has, newest first, by their short names
    where they have one (``2025``, ``2023``): the policies a sensitivity run compares."""
    from vpp.simulation import TARIFF_POLICIES

    sites = [catalog.fleet.site(s) for s in site_ids] if site_ids else catalog.fleet.sites
    ids = {s.tariff_id for s in sites}
    common = set.intersection(*({t.version for t in catalog.tariffs.versions(i)} for i in ids))
    dates = {t.version: t.effective_from for i in ids for t in catalog.tariffs.versions(i)}
    short = {v: k for k, v in TARIFF_POLICIES.items() if v}
    return [short.get(v, v) for v in sorted(common, key=lambda v: dates[v], reverse=True)]


def subsidy_rates(catalog: Catalog, steps: int = 3) -> list[float]:
    """0 to the newest policy version's maximum rate in ``steps`` equal steps [yuan/kWh]."""
    cap = catalog.policy.max_rate_yuan_per_kwh
    return [round(cap * k / steps, 6) for k in range(steps + 1)]


def sensitivity(
    catalog: Catalog, opts: SimulationOptions, site_ids: list[str] | None,
    rates: list[float], policies: list[str], finance: FinanceInputs,
    out: str | Path | None = None,
    on_scenario: Callable[[float, str, SimulationResult], None] | None = None,
    **run: Any,
) -> pd.DataFrame:
    """One simulation per (subsidy rate, tariff policy); a row each with the fleet's subsidy
    [yuan], savings [yuan], storage NPV with subsidy [yuan], sites with a positive NPV and
    the median IRR [-] of the storage sites. ``run`` goes to :func:`simulate` (jobs,
    executor, ...); ``out`` gets one sub-folder per scenario."""
    rows = []
    for policy in policies:
        for rate in rates:
            o = opts.model_copy(update={"subsidy_rate_yuan_per_kwh": rate,
                                        "tariff_policy": policy})
            folder = Path(out) / f"rate-{rate:g}_tariff-{policy}" if out else None
            res = simulate(catalog, o, site_ids, out=folder, **run)
            if on_scenario:
                on_scenario(rate, policy, res)
            npvs, irrs = [], []
            for sid, m in res.months.groupby("site_id"):
                site = catalog.fleet.site(sid)
                st = site.storage
                if st is None:
                    continue
                f = site_finance(m, st.energy_kwh, finance, catalog.paid_window(site),
                                 st.grid_connection_date)
                if f["finance_note"]:  # no simulated month with the battery
                    continue
                npvs.append(f["npv_with_subsidy_yuan"])
                if f["irr_with_subsidy"] is not None:
                    irrs.append(f["irr_with_subsidy"])
            rows.append({
                "subsidy_rate_yuan_per_kwh": rate, "tariff_policy": policy,
                "subsidy_yuan": float(res.months["subsidy_yuan"].sum()),
                "savings_yuan": float(res.months["savings_yuan"].sum()),
                "storage_npv_yuan": float(np.sum(npvs)),
                "sites_npv_positive": int(np.sum(np.asarray(npvs) > 0)),
                "median_irr": float(np.median(irrs)) if irrs else float("nan"),
            })
    return pd.DataFrame(rows)
