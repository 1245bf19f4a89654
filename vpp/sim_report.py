"""Pilot evaluation report of a simulation: per-site summary, indicators against the action
plan's targets, storage finance, charts; Markdown, HTML and CSV.

Everything here reads :class:`vpp.simulation.SimulationResult` and writes files; nothing
is recomputed from the model.
"""

from __future__ import annotations

import html
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from models import InvalidInputError
from vpp.catalog import Catalog
from vpp.finance import FinanceInputs, annualisation_warning, site_finance
from vpp.simulation import SimulationResult

INDICATORS_FILE = "policies/changzhou-pilot-indicators.toml"


@dataclass(frozen=True)
class Indicator:
    """A target: ``value >= target`` (``at_least``) or ``<=`` (``at_most``)."""

    key: str
    name: str
    target: float
    direction: str
    source: str
    illustrative: bool

    def met(self, value: float) -> bool:
        return value >= self.target if self.direction == "at_least" else value <= self.target


def load_indicators(catalog: Catalog) -> list[Indicator]:
    """The indicator file in the catalog's data folder."""
    path = catalog.root / INDICATORS_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return [Indicator(d["key"], d["name"], float(d["target"]), d["direction"],
                          d["source"], bool(d.get("illustrative", False)))
                for d in data["indicators"]]
    except (FileNotFoundError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise InvalidInputError(f"indicator file {path}: {exc}") from None


def site_summary(result: SimulationResult, catalog: Catalog,
                 finance: FinanceInputs | None) -> pd.DataFrame:
    """One row per site: totals over the period [kWh, yuan, t], ratios [-], indicators and
    (with ``finance``) NPV/IRR/payback with and without the subsidy."""
    rows = []
    for sid, m in result.months.groupby("site_id", sort=False):
        site = catalog.fleet.site(sid)
        st = site.storage
        tot = m.select_dtypes("number").sum()
        pv = tot["pv_kwh"]
        peak_red = float(np.mean(1.0 - m["peak_kw"] / m["peak_without_storage_kw"].where(
            m["peak_without_storage_kw"] > 0))) if (m["peak_without_storage_kw"] > 0).any() \
            else 0.0
        row = {
            "site_id": sid, "months": len(m),
            "storage_kw": st.power_kw if st else 0.0,
            "storage_kwh": st.energy_kwh if st else 0.0,
            "subsidy_eligible": bool(st and st.power_kw >= catalog.policy.min_power_kw),
            "discharge_kwh": tot["discharge_kwh"], "subsidy_yuan": tot["subsidy_yuan"],
            "net_cost_yuan": tot["net_cost_yuan"],
            "net_cost_without_storage_yuan": tot["net_cost_without_storage_yuan"],
            "savings_yuan": tot["savings_yuan"],
            "demand_charge_yuan": tot["demand_charge_yuan"],
            "demand_charge_without_storage_yuan": tot["demand_charge_without_storage_yuan"],
            "degradation_cost_yuan": tot["degradation_cost_yuan"],
            "equivalent_full_cycles": tot["equivalent_full_cycles"],
            "co2_avoided_t": tot["co2_avoided_t"],
            "pv_self_consumption_frac": tot["pv_self_consumed_kwh"] / pv if pv > 0 else 0.0,
            "renewable_share_frac": tot["pv_self_consumed_kwh"] / tot["consumption_kwh"]
            if tot["consumption_kwh"] > 0 else 0.0,
            "peak_reduction_frac": peak_red,
            "adjustable_capacity_kw": (st.power_kw if st else 0.0)
            + sum(f.p_max_kw for f in site.flexible_loads),
            "plans_milp": int(tot["plans_milp"]), "plans_uncertified": int(
                tot["plans_uncertified"]), "gap_max": float(m["gap_max"].max()),
        }
        if finance is not None and st is not None:
            row.update(site_finance(m, st.energy_kwh, finance))
        rows.append(row)
    return pd.DataFrame(rows)


def fleet_row(summary: pd.DataFrame) -> dict:
    """Fleet totals and consumption-weighted shares for the report."""
    out = {c: float(summary[c].sum()) for c in (
        "discharge_kwh", "subsidy_yuan", "net_cost_yuan", "net_cost_without_storage_yuan",
        "savings_yuan", "demand_charge_yuan", "demand_charge_without_storage_yuan",
        "degradation_cost_yuan", "co2_avoided_t", "adjustable_capacity_kw")}
    return out


def _perfect_line(result: SimulationResult) -> list[str]:
    """The forecast's price, when the run costed every day with perfect foresight too."""
    pf = result.months["perfect_net_cost_yuan"]
    if pf.isna().all():
        return []
    net = float(result.months["net_cost_yuan"].sum())
    return [f"- With perfect foresight (each day re-planned on the actual PV and load from the "
            f"same morning state) the net cost would have been {float(pf.sum()):,.0f} yuan: "
            f"forecast errors cost {net - float(pf.sum()):,.0f} yuan"]


def _md_table(df: pd.DataFrame, floatfmt: str = "{:,.0f}") -> str:
    def cell(v):
        if isinstance(v, bool | np.bool_):
            return "yes" if v else "no"
        if isinstance(v, float | np.floating):
            return "-" if np.isnan(v) else floatfmt.format(v)
        return "-" if v is None else str(v)

    head = "| " + " | ".join(df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def _charts(result: SimulationResult, summary: pd.DataFrame, folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names: list[str] = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        names.append(name)

    m = result.months
    sub = m.pivot_table(index="month", columns="site_id", values="subsidy_yuan",
                        aggfunc="sum").fillna(0.0)
    fig, ax = plt.subplots(figsize=(11, 4.5))
    bottom = np.zeros(len(sub))
    paid = [sid for sid in sub.columns if sub[sid].sum() > 0]
    for sid in paid:
        ax.bar(sub.index, sub[sid] / 1e3, bottom=bottom / 1e3, label=sid)
        bottom += sub[sid].to_numpy()
    ax.set_ylabel("subsidy [thousand yuan]")
    ax.set_title("Storage discharge subsidy by month and site"
                 + ("" if paid else ": none paid in this period"))
    ax.tick_params(axis="x", rotation=60)
    if paid:
        ax.legend(ncol=6, fontsize=6)
    save(fig, "subsidy_by_month.png")

    fig, ax = plt.subplots(figsize=(11, 4.5))
    x = np.arange(len(summary))
    ax.bar(x, summary["renewable_share_frac"] * 100, color="tab:green")
    ax.axhline(30, color="k", ls="--", lw=1, label="action-plan target 30 %")
    ax.set_xticks(x, summary["site_id"], rotation=70, fontsize=7)
    ax.set_ylabel("renewable share [%]")
    ax.set_title("On-site PV share of consumption per site")
    ax.legend()
    save(fig, "renewable_share.png")

    fig, ax = plt.subplots(figsize=(11, 4.5))
    ax.bar(x - 0.2, summary["net_cost_without_storage_yuan"] / 1e6, 0.4, label="without storage")
    ax.bar(x + 0.2, summary["net_cost_yuan"] / 1e6, 0.4, label="with storage and subsidy")
    ax.set_xticks(x, summary["site_id"], rotation=70, fontsize=7)
    ax.set_ylabel("net electricity cost [million yuan]")
    ax.set_title("Net cost over the simulated period")
    ax.legend()
    save(fig, "net_cost.png")
    return names


def write_report(result: SimulationResult, catalog: Catalog, folder: str | Path,
                 finance: FinanceInputs | None = None,
                 sensitivity: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write ``report.md``, ``report.html``, ``months.csv``, ``sites.csv``, ``days.csv``
    and the charts into ``folder``; return the paths by name."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    summary = site_summary(result, catalog, finance)
    indicators = load_indicators(catalog)
    result.months.to_csv(out / "months.csv", index=False)
    result.days.to_csv(out / "days.csv", index=False)
    summary.to_csv(out / "sites.csv", index=False)
    charts = _charts(result, summary, out) if len(summary) else []
    o = result.options
    fleet = fleet_row(summary)
    ind_rows = []
    for _, r in summary.iterrows():
        row = {"site": r["site_id"]}
        for ind in indicators:
            v = float(r[ind.key])
            row[ind.key] = f"{v:.1%}" if ind.key.endswith("_frac") else f"{v:,.0f}"
            row[ind.key] += " ✓" if ind.met(v) else " ✗"
        ind_rows.append(row)
    met_counts = {ind.key: int(sum(ind.met(float(v)) for v in summary[ind.key]))
                  for ind in indicators}
    period = (f"{o.start} for {o.days} days" if o.days else f"{o.start} for {o.months} months")
    gaps = result.days["gap"] if len(result.days) else pd.Series(dtype=float)
    lines = [
        "# Pilot evaluation: simulated operation of the Changzhou smart microgrids",
        "",
        f"Period {period}; tariff policy {o.tariff_policy}; subsidy rate "
        f"{'policy' if o.subsidy_rate_yuan_per_kwh is None else o.subsidy_rate_yuan_per_kwh}"
        f" yuan/kWh; dispatch {'subsidy-aware' if o.subsidy_aware else 'subsidy-blind'}; "
        f"{o.foresight} foresight; seed {o.seed}; emission factor "
        f"{o.emission_factor_t_per_mwh} tCO2/MWh. Sites: {len(summary)}"
        + (f" ({len(result.failures)} failed: {', '.join(result.failures)})"
           if result.failures else "") + ".",
        "",
        "Each day is planned on forecasts and realised with the actual PV and load (see "
        "docs/simulation.md); costs are what the site would pay, demand charges billed on "
        "each month's realised peak.",
        "",
        "## Fleet",
        "",
        f"- Subsidy earned: **{fleet['subsidy_yuan']:,.0f} yuan** on "
        f"{fleet['discharge_kwh']:,.0f} kWh discharged",
        f"- Net electricity cost: {fleet['net_cost_yuan']:,.0f} yuan with storage and subsidy, "
        f"{fleet['net_cost_without_storage_yuan']:,.0f} yuan without: savings "
        f"**{fleet['savings_yuan']:,.0f} yuan**",
        f"- Demand charges: {fleet['demand_charge_yuan']:,.0f} yuan vs "
        f"{fleet['demand_charge_without_storage_yuan']:,.0f} yuan without storage",
        *_perfect_line(result),
        f"- CO2 avoided: {fleet['co2_avoided_t']:,.0f} t; adjustable capacity "
        f"{fleet['adjustable_capacity_kw'] / 1e3:,.1f} MW",
        f"- Daily plans: {len(gaps)}; certified gap median {gaps.median():.2e}, 99th "
        f"percentile {gaps.quantile(0.99):.2e}, max {gaps.max():.2e}"
        if len(gaps) else "- Daily plans: none",
        "",
        "## Action-plan indicators",
        "",
    ]
    for ind in indicators:
        lines.append(f"- {ind.name}: target {'≥' if ind.direction == 'at_least' else '≤'} "
                     f"{ind.target:.0%}" if ind.key.endswith("_frac") else
                     f"- {ind.name}: target ≥ {ind.target:,.0f} kW")
        lines[-1] += (f" — met by {met_counts[ind.key]} of {len(summary)} sites "
                      f"({'illustrative proxy' if ind.illustrative else 'policy target'}; "
                      f"{ind.source})")
    lines += ["", _md_table(pd.DataFrame(ind_rows)), "", "## Sites", ""]
    cols = ["site_id", "storage_kw", "subsidy_yuan", "discharge_kwh", "savings_yuan",
            "equivalent_full_cycles", "co2_avoided_t"]
    lines.append(_md_table(summary[cols]))
    if finance is not None and "npv_with_subsidy_yuan" in summary:
        n_months = int(result.months.groupby("site_id").size().min())
        warning = annualisation_warning(n_months)
        lines += ["", "## Storage finance", ""] + ([f"**{warning}**", ""] if warning else []) + [
                  f"Capex {finance.capex_yuan_per_wh} yuan/Wh, life {finance.life_years} years, "
                  f"discount rate {finance.discount_rate:.1%}, O&M "
                  f"{finance.om_frac_per_year:.1%} of capex a year ({finance.source}). Years "
                  "after the simulated ones repeat the mean simulated savings without subsidy.",
                  ""]
        fin = summary[["site_id", "capex_yuan", "npv_with_subsidy_yuan",
                       "npv_without_subsidy_yuan", "irr_with_subsidy", "irr_without_subsidy",
                       "payback_with_subsidy_years", "payback_without_subsidy_years"]].copy()
        for c in ("irr_with_subsidy", "irr_without_subsidy"):
            fin[c] = [("-" if v is None or pd.isna(v) else f"{v:.1%}") for v in fin[c]]
        for c in ("payback_with_subsidy_years", "payback_without_subsidy_years"):
            fin[c] = [("never" if v is None or pd.isna(v) else f"{v:.1f}") for v in fin[c]]
        lines.append(_md_table(fin.dropna(subset=["capex_yuan"])))
    if sensitivity is not None:
        sensitivity.to_csv(out / "sensitivity.csv", index=False)
        lines += ["", "## Sensitivity (fleet)", "", _md_table(sensitivity, "{:,.2f}")]
    lines += ["", "## Charts", ""] + [f"![{c}]({c})" for c in charts]
    lines += ["", "Files: months.csv (site x month), days.csv (every daily plan), sites.csv "
              "(this summary)."]
    md = "\n".join(lines) + "\n"
    (out / "report.md").write_text(md, encoding="utf-8")
    (out / "report.html").write_text(_html(md), encoding="utf-8")
    return {"report.md": out / "report.md", "report.html": out / "report.html",
            "months.csv": out / "months.csv", "sites.csv": out / "sites.csv",
            **{c: out / c for c in charts}}


def _html(md: str) -> str:
    """A small Markdown subset (headings, bullets, tables, images, bold) as HTML."""
    body: list[str] = []
    table: list[str] = []

    def inline(text: str) -> str:
        t = html.escape(text)
        parts = t.split("**")
        return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))

    def flush() -> None:
        if table:
            rows = [r.strip("|").split("|") for r in table if not r.startswith("|---")]
            head = "".join(f"<th>{inline(c.strip())}</th>" for c in rows[0])
            trs = "".join("<tr>" + "".join(f"<td>{inline(c.strip())}</td>" for c in r)
                          + "</tr>" for r in rows[1:])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>")
            table.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{inline(line[level:].strip())}</h{level}>")
        elif line.startswith("- "):
            body.append(f"<li>{inline(line[2:])}</li>")
        elif line.startswith("!["):
            src = line[line.index("(") + 1:-1]
            body.append(f'<img src="{html.escape(src)}" alt="{html.escape(src)}">')
        elif line.strip():
            body.append(f"<p>{inline(line)}</p>")
    flush()
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
             "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;"
             "padding:2px 6px;text-align:right}img{max-width:100%}")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>Pilot evaluation"
            f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n")
