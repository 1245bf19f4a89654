"""Pilot evaluation report of a simulation: per-site summary, indicators against the action
plan's targets, storage finance, charts; Markdown, HTML and CSV.

Everything here reads :class:`vpp.simulation.SimulationResult` and writes files; nothing
is recomputed from the model.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models import InvalidInputError
from vpp.catalog import INDICATORS_FILE, Catalog
from vpp.finance import FinanceInputs, annualisation_warning, battery_months, site_finance
from vpp.simulation import SimulationResult


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
            "subsidy_eligible": catalog.paid_window(site) is not None,
            "discharge_kwh": tot["discharge_kwh"], "subsidy_yuan": tot["subsidy_yuan"],
            "net_cost_yuan": tot["net_cost_yuan"],
            "net_cost_without_storage_yuan": tot["net_cost_without_storage_yuan"],
            "savings_yuan": tot["savings_yuan"],
            "energy_savings_yuan": (tot["energy_cost_without_storage_yuan"]
                                    - tot["export_revenue_without_storage_yuan"])
            - (tot["energy_cost_yuan"] - tot["export_revenue_yuan"]),
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
            row.update(site_finance(m, st.energy_kwh, finance, catalog.paid_window(site),
                                    st.grid_connection_date))
        rows.append(row)
    return pd.DataFrame(rows)


def _policy_rates(catalog: Catalog) -> str:
    """The policy's rate, or each version's when they differ."""
    versions = catalog.policies.versions
    if len({v.rate_yuan_per_kwh for v in versions}) == 1:
        return f"{versions[0].rate_yuan_per_kwh:g} yuan/kWh (the policy's)"
    return ("each station's policy version's (" + ", ".join(
        f"{v.version} from {v.effective_from}: {v.rate_yuan_per_kwh:g}" for v in versions)
        + " yuan/kWh)")


def fleet_row(summary: pd.DataFrame) -> dict:
    """Fleet totals and consumption-weighted shares for the report."""
    out = {c: float(summary[c].sum()) for c in (
        "discharge_kwh", "subsidy_yuan", "net_cost_yuan", "net_cost_without_storage_yuan",
        "savings_yuan", "demand_charge_yuan", "demand_charge_without_storage_yuan",
        "degradation_cost_yuan", "co2_avoided_t", "adjustable_capacity_kw")}
    return out


def _replan_line(result: SimulationResult) -> list[str]:
    """The closed loop's re-plans through the day (none under day-ahead control)."""
    m = result.months
    if not len(m) or "replans" not in m or not m["replans"].sum():
        return []
    return [f"- Closed-loop re-plans: {int(m['replans'].sum()):,}; not certified within the "
            f"gap {int(m['replans_uncertified'].sum())}; largest certified gap "
            f"{m['gap_max'].max():.4%}"]


def _perfect_line(result: SimulationResult) -> list[str]:
    """The forecast's price, when the run costed every day with perfect foresight too."""
    pf = result.months["perfect_net_cost_yuan"]
    if pf.isna().all():
        return []
    net = float(result.months["net_cost_yuan"].sum())
    return [f"- With perfect foresight (each day re-planned on the actual PV and load from the "
            f"same morning state) the net cost would have been {float(pf.sum()):,.0f} yuan: "
            f"forecast errors cost {net - float(pf.sum()):,.0f} yuan"]


def finance_span(result: SimulationResult, catalog: Catalog) -> tuple[int, int]:
    """The fewest whole battery months (:func:`vpp.finance.battery_months`) and simulated days
    any storage site's finance is annualised from (all sites' months without storage)."""
    months, days = [], []
    for sid, m in result.months.groupby("site_id"):
        st = catalog.fleet.site(sid).storage
        months.append(battery_months(m, st.grid_connection_date) if st else len(m))
        days.append(int(m["days"].sum()))
    return (min(months), min(days)) if months else (0, 0)


def _pct(frac: float) -> str:
    """A fraction [-] as a percentage with one decimal, without "-0.0%" for a tiny negative."""
    return f"{0.0 if abs(frac) < 5e-4 else frac:.1%}"


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


def savings_parts(summary: pd.DataFrame) -> pd.DataFrame:
    """Each site's savings [yuan] split into its parts, which add up to ``savings_yuan``:
    ``energy`` (energy cost less export revenue, without storage minus with), ``demand``
    (demand charges, without minus with), ``subsidy`` (earned on discharge) and ``wear``
    (minus the battery's degradation cost)."""
    return pd.DataFrame({
        "site_id": summary["site_id"],
        "energy_yuan": summary["energy_savings_yuan"],
        "demand_yuan": summary["demand_charge_without_storage_yuan"]
        - summary["demand_charge_yuan"],
        "subsidy_yuan": summary["subsidy_yuan"],
        "wear_yuan": -summary["degradation_cost_yuan"],
        "savings_yuan": summary["savings_yuan"]})


def month_table(months: pd.DataFrame) -> pd.DataFrame:
    """Per site and month: savings [yuan], the demand charge with and without storage
    [yuan] and its cut [-], and - with ``compare_perfect`` - the savings of the per-day
    perfect-foresight comparator [yuan]."""
    if months.empty:
        return pd.DataFrame()
    m = months
    out = pd.DataFrame({
        "site_id": m["site_id"], "month": m["month"],
        "savings_yuan": m["net_cost_without_storage_yuan"] - m["net_cost_yuan"],
        "demand_charge_yuan": m["demand_charge_yuan"],
        "demand_charge_without_storage_yuan": m["demand_charge_without_storage_yuan"],
    })
    base = m["demand_charge_without_storage_yuan"].where(
        m["demand_charge_without_storage_yuan"] > 0)
    out["demand_cut"] = (1.0 - m["demand_charge_yuan"] / base).fillna(0.0)
    if m["perfect_net_cost_yuan"].notna().any():
        out["perfect_savings_yuan"] = (m["net_cost_without_storage_yuan"]
                                       - m["perfect_net_cost_yuan"])
    return out.reset_index(drop=True)


def chart_name(name: str, lang: str) -> str:
    """The file of chart ``name`` (``net_cost``) in ``lang``: English charts keep the plain
    name (``net_cost.png``), others add the language (``net_cost.zh-CN.png``)."""
    return f"{name}.png" if lang == "en" else f"{name}.{lang}.png"


CHARTS = ("subsidy_by_month", "renewable_share", "net_cost")


def _charts(result: SimulationResult, summary: pd.DataFrame, folder: Path,
            lang: str = "en") -> list[str]:
    """The report's charts labelled in ``lang`` (English when no CJK font is installed,
    see :func:`vpp.plotting.chart_language`); the files written."""
    from vpp.i18n import Translator
    from vpp.plotting import chart_language, distinct_colours, pyplot

    plt = pyplot()
    tr = Translator(chart_language(lang))
    names: list[str] = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        fig.savefig(folder / chart_name(name, lang), dpi=110)
        plt.close(fig)
        names.append(chart_name(name, lang))

    m = result.months
    sub = m.pivot_table(index="month", columns="site_id", values="subsidy_yuan",
                        aggfunc="sum").fillna(0.0)
    paid = sub.sum().sort_values(ascending=False)
    paid = paid[paid > 0]
    top = list(paid.index[:9])  # nine sites by name, the rest as one band
    groups = {sid: sub[sid] for sid in top}
    rest = [sid for sid in paid.index if sid not in top]
    if rest:
        groups[tr.t("report.other_sites", n=len(rest))] = sub[rest].sum(axis=1)
    fig, ax = plt.subplots(figsize=(11, 4.5))
    bottom = np.zeros(len(sub))
    for (label, values), colour in zip(groups.items(), distinct_colours(len(groups)),
                                       strict=True):
        ax.bar(sub.index, values / 1e3, bottom=bottom / 1e3, label=label, color=colour)
        bottom += values.to_numpy()
    ax.set_ylabel(tr.t("report.chart_subsidy_axis"))
    ax.set_title(tr.t("report.chart_subsidy") if len(paid) else tr.t("report.chart_no_subsidy"))
    ax.tick_params(axis="x", rotation=60)
    if len(paid):
        ax.legend(ncol=5, fontsize=7)
    save(fig, "subsidy_by_month")

    fig, ax = plt.subplots(figsize=(11, 4.5))
    x = np.arange(len(summary))
    ax.bar(x, summary["renewable_share_frac"] * 100, color="tab:green")
    ax.axhline(30, color="k", ls="--", lw=1, label=tr.t("report.chart_target_30"))
    ax.set_xticks(x, summary["site_id"], rotation=70, fontsize=7)
    ax.set_ylabel(tr.t("report.chart_share_axis"))
    ax.set_title(tr.t("report.chart_share"))
    ax.legend()
    save(fig, "renewable_share")

    parts = savings_parts(summary)
    fig, ax = plt.subplots(figsize=(11, 5))
    pos = np.zeros(len(parts))
    neg = np.zeros(len(parts))
    colours = {"energy_yuan": "#3a7bd5", "demand_yuan": "#e67e22", "subsidy_yuan": "#27ae60",
               "wear_yuan": "#95a5a6"}
    for col, colour in colours.items():
        v = parts[col].to_numpy() / 1e3
        base = np.where(v >= 0, pos, neg)
        ax.bar(x, v, 0.7, bottom=base, color=colour, label=tr.t(f"report.part_{col}"))
        pos += np.clip(v, 0, None)
        neg += np.clip(v, None, 0)
    ax.plot(x, parts["savings_yuan"] / 1e3, "kD", ms=5, label=tr.t("report.part_total"))
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(x, summary["site_id"], rotation=70, fontsize=7)
    ax.set_ylabel(tr.t("report.chart_savings_axis"))
    total = float(parts["savings_yuan"].sum())
    ax.set_title(tr.t("report.chart_savings", total=tr.num(total / 1e3)))
    ax.legend(ncol=5, fontsize=8)
    save(fig, "net_cost")
    return names


def write_report(result: SimulationResult, catalog: Catalog, folder: str | Path,
                 finance: FinanceInputs | None = None,
                 sensitivity: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write ``report.md``, ``report.html``, ``months.csv``, ``sites.csv``, ``days.csv``
    and the charts into ``folder``; return the paths by name."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    summary = site_summary(result, catalog, finance)
    span = finance_span(result, catalog)
    indicators = load_indicators(catalog)
    result.months.to_csv(out / "months.csv", index=False)
    result.days.to_csv(out / "days.csv", index=False)
    summary.to_csv(out / "sites.csv", index=False)
    charts = {lang: _charts(result, summary, out, lang) if len(summary) else []
              for lang in REPORT_LANGS}
    o = result.options
    fleet = fleet_row(summary)
    ind_rows = []
    for _, r in summary.iterrows():
        row = {"site": r["site_id"]}
        for ind in indicators:
            v = float(r[ind.key])
            row[ind.key] = _pct(v) if ind.key.endswith("_frac") else f"{v:,.0f}"
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
        + (_policy_rates(catalog) if o.subsidy_rate_yuan_per_kwh is None
           else f"{o.subsidy_rate_yuan_per_kwh:g} yuan/kWh")
        + f"; dispatch {'subsidy-aware' if o.subsidy_aware else 'subsidy-blind'}; "
        f"{o.foresight} foresight; seed {o.seed}; emission factor "
        f"{o.emission_factor_t_per_mwh} tCO2/MWh. Sites: {len(summary)}"
        + (f" ({len(result.failures)} failed: {', '.join(result.failures)})"
           if result.failures else "") + ".",
        "",
        ("The closed loop re-plans each day from the measured state (hourly and on "
         "deviations, nowcasts, a peak margin) and the battery meets the actual PV and load "
         "interval by interval" if o.control == "mpc" else
         "Each day is planned on forecasts and realised with the actual PV and load")
        + " (see docs/simulation.md); costs are what the site would pay, demand charges "
        "billed on each month's realised peak.",
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
        f"- Day-ahead plans (one each morning): {len(gaps)}; certified gap median "
        f"{gaps.median():.4%}, 99th percentile {gaps.quantile(0.99):.4%}, max "
        f"{gaps.max():.4%}" if len(gaps) else "- Day-ahead plans: none",
        *_replan_line(result),
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
    parts = savings_parts(summary)
    if len(parts):
        total = parts.drop(columns="site_id").sum()
        lines += ["", f"Savings made of: energy {total['energy_yuan']:,.0f} / demand charge "
                      f"{total['demand_yuan']:,.0f} / subsidy {total['subsidy_yuan']:,.0f} / "
                      f"wear {total['wear_yuan']:,.0f} yuan (per site below)", "",
                  _md_table(parts)]
    month_rows = month_table(result.months)
    if len(month_rows):
        shown = month_rows.copy()
        shown["demand_cut"] = [_pct(v) for v in shown["demand_cut"]]
        lines += ["", "## Month by month", "", _md_table(shown)]
    if finance is not None and "npv_with_subsidy_yuan" in summary:
        warning = annualisation_warning(*span)
        lines += ["", "## Storage finance", ""] + ([f"**{warning}**", ""] if warning else []) + [
                  f"Capex {finance.capex_yuan_per_wh} yuan/Wh, life {finance.life_years} years, "
                  f"discount rate {finance.discount_rate:.1%}, O&M "
                  f"{finance.om_frac_per_year:.1%} of capex a year ({finance.source}). "
                  "The life starts in the month of the battery's grid connection "
                  "(`life_from`), and values are at its start; months of the life not "
                  "simulated repeat the mean savings of the simulated months with the "
                  "battery, plus the mean simulated subsidy in the months of the paid window. "
                  "Without subsidy: the same operation with the subsidy's money taken out "
                  "(the sensitivity table re-plans without it).",
                  ""]
        fin = summary[["site_id", "life_from", "capex_yuan", "npv_with_subsidy_yuan",
                       "npv_without_subsidy_yuan", "irr_with_subsidy", "irr_without_subsidy",
                       "payback_with_subsidy_years", "payback_without_subsidy_years"]].copy()
        for c in ("irr_with_subsidy", "irr_without_subsidy"):
            fin[c] = ["-" if v is None or pd.isna(v) else _pct(v) for v in fin[c]]
        for c in ("payback_with_subsidy_years", "payback_without_subsidy_years"):
            fin[c] = ["never" if v is None else "-" if pd.isna(v) else f"{v:.1f}"
                      for v in fin[c]]
        lines.append(_md_table(fin.dropna(subset=["capex_yuan"])))
        notes = summary.loc[summary["finance_note"].fillna("") != "",
                            ["site_id", "finance_note"]]
        lines += [f"- {r.site_id}: {r.finance_note}" for r in notes.itertuples()]
    if sensitivity is not None:
        sensitivity.to_csv(out / "sensitivity.csv", index=False)
        shown = sensitivity.copy()
        if "median_irr" in shown:
            shown["median_irr"] = ["-" if pd.isna(v) else _pct(v) for v in shown["median_irr"]]
        lines += ["", "## Sensitivity (fleet)", "", _md_table(shown, "{:,.2f}")]
    lines += ["", "## Charts", ""] + [f"![{c}]({c})" for c in charts["en"]]
    lines += ["", "Files: months.csv (site x month), days.csv (every daily plan), sites.csv "
              "(this summary)."]
    md = "\n".join(lines) + "\n"
    (out / "report.md").write_text(md, encoding="utf-8")
    ctx = report_context(result, summary, indicators, finance, sensitivity, span)
    files = {"report.md": out / "report.md"}
    for lang in REPORT_LANGS:
        name = "report.html" if lang == "en" else f"report.{lang}.html"
        (out / name).write_text(render_html(ctx, lang, charts[lang]), encoding="utf-8")
        files[name] = out / name
    return {**files, "months.csv": out / "months.csv", "sites.csv": out / "sites.csv",
            **{c: out / c for cs in charts.values() for c in cs}}


#: The languages of the HTML report: ``report.html`` (English), ``report.zh-CN.html``.
REPORT_LANGS = ("en", "zh-CN")


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and np.isnan(v):
        return None
    return v


def report_context(result: SimulationResult, summary: pd.DataFrame,
                   indicators: list[Indicator], finance: FinanceInputs | None,
                   sensitivity: pd.DataFrame | None, span: tuple[int, int] = (0, 0),
                   ) -> dict[str, Any]:
    """The report's numbers, in no language: what the HTML templates render; ``span`` the
    months and days finance is annualised from (:func:`finance_span`)."""
    o = result.options
    parts = savings_parts(summary) if len(summary) else pd.DataFrame(
        columns=["site_id", "energy_yuan", "demand_yuan", "subsidy_yuan", "wear_yuan",
                 "savings_yuan"])
    gaps = result.days["gap"] if len(result.days) else pd.Series(dtype=float)
    pf = result.months["perfect_net_cost_yuan"]
    ind_rows = []
    for _, r in summary.iterrows():
        ind_rows.append({"site": r["site_id"], "cells": [
            {"value": float(r[i.key]), "met": i.met(float(r[i.key])),
             "frac": i.key.endswith("_frac")} for i in indicators]})
    rows = summary.merge(parts.drop(columns=["subsidy_yuan", "savings_yuan"]), on="site_id")
    ctx: dict[str, Any] = {
        "start": o.start, "days": o.days, "months": o.months,
        "tariff_policy": o.tariff_policy, "rate": o.subsidy_rate_yuan_per_kwh,
        "subsidy_aware": o.subsidy_aware, "foresight": o.foresight, "seed": o.seed,
        "control": o.control,
        "month_rows": [{k: _plain(v) for k, v in r.items()}
                       for r in month_table(result.months).to_dict("records")],
        "emission_factor": o.emission_factor_t_per_mwh, "n_sites": len(summary),
        "failures": list(result.failures), "fleet": fleet_row(summary),
        "parts_total": {c: float(parts[c].sum()) for c in parts.columns if c != "site_id"},
        "perfect": None if pf.isna().all() else float(pf.sum()),
        "gaps": {"n": len(gaps), "median": float(gaps.median()),
                 "p99": float(gaps.quantile(0.99)), "max": float(gaps.max())}
        if len(gaps) else None,
        "indicators": [{"key": i.key, "target": i.target, "direction": i.direction,
                        "source": i.source, "illustrative": i.illustrative,
                        "frac": i.key.endswith("_frac"),
                        "met": int(sum(i.met(float(v)) for v in summary[i.key]))}
                       for i in indicators],
        "indicator_rows": ind_rows,
        "site_rows": [{k: _plain(v) for k, v in r.items()} for r in rows.to_dict("records")],
        "finance": None, "sensitivity": None,
    }
    if finance is not None and "npv_with_subsidy_yuan" in summary:
        n_months, n_days = span
        fin = summary.dropna(subset=["capex_yuan"])
        ctx["finance"] = {
            "warning": bool(annualisation_warning(n_months)), "months": n_months,
            "days": n_days,
            "capex": finance.capex_yuan_per_wh, "life": finance.life_years,
            "rate": finance.discount_rate, "om": finance.om_frac_per_year,
            "source": finance.source,
            "rows": [{k: _plain(v) for k, v in r.items()} for r in fin.to_dict("records")]}
    if sensitivity is not None:
        ctx["sensitivity"] = [{k: _plain(v) for k, v in r.items()}
                              for r in sensitivity.to_dict("records")]
    return ctx


def render_html(ctx: dict[str, Any], lang: str, charts: list[str]) -> str:
    """The report as one HTML document in ``lang`` (template ``vpp/templates/report.html.
    j2``), with its ``charts``."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    from vpp.i18n import Translator
    from vpp.plotting import cjk_font

    env = Environment(loader=FileSystemLoader(Path(__file__).with_name("templates")),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                      lstrip_blocks=True)
    tr = Translator(lang)
    note = tr.t("report.no_cjk_font") if lang == "zh-CN" and cjk_font() is None else ""
    return env.get_template("report.html.j2").render(c=ctx, tr=tr, charts=charts,
                                                     chart_note=note)
