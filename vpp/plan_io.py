"""Plan documents on disk and on screen: JSON, interval CSV, summary tables, PNG plots."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models import DispatchProblem, GridSpec, InvalidInputError, ShiftableLoad, StorageSpec
from vpp.accounting import FlowArrays


def plan_json(plan: dict[str, Any]) -> str:
    """The plan as UTF-8 JSON text (stable key order, Chinese kept readable)."""
    return json.dumps(plan, ensure_ascii=False, indent=1)


def read_plan(path: str | Path) -> dict[str, Any]:
    """Load a plan JSON file."""
    return json.loads(Path(path).read_text("utf-8"))


def _spec(cls: type, data: dict[str, Any]) -> Any:
    """A spec dataclass from a plan's parameter table (its own fields only)."""
    return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def problem_from_plan(plan: dict[str, Any]) -> tuple[DispatchProblem, FlowArrays, np.ndarray]:
    """The dispatch problem a plan document describes, its flows, and the subsidy rate it
    earns [yuan/kWh] - everything :mod:`vpp.audit` rechecks, from the document alone.

    Raises
    ------
    InvalidInputError
        The document is not a plan (keys named).
    """
    missing = [k for k in ("interval_minutes", "inputs", "intervals", "parameters", "kpis",
                           "solver") if k not in plan]
    if missing:
        raise InvalidInputError(f"not a plan document: no {', '.join(missing)}")
    inp, iv, par = plan["inputs"], plan["intervals"], plan["parameters"]
    ts = list(inp["timestamps"])
    days = [dt.date.fromisoformat(str(t)[:10]) for t in ts]
    rate = np.asarray(inp["subsidy_yuan_per_kwh"], dtype=float)
    counted = par.get("subsidy", {}).get("counted_in_objective", True)
    storage = None
    if par["storage"] is not None:
        storage = _spec(StorageSpec, par["storage"])
    months = np.array([d.year * 12 + d.month for d in days], dtype=np.int64)
    months -= months[0]
    grid = dict(par["grid"])
    if isinstance(grid.get("demand_rate_yuan_per_kw_month"), list):
        grid["demand_rate_yuan_per_kw_month"] = tuple(grid["demand_rate_yuan_per_kw_month"])
    for key in ("import_limit_kw", "peak_margin_kw"):
        if isinstance(grid.get(key), list):
            grid[key] = np.asarray(grid[key], dtype=float)
    p = DispatchProblem(
        dt_h=plan["interval_minutes"] / 60.0,
        load_kw=np.asarray(inp["load_kw"], dtype=float),
        pv_kw=np.asarray(inp["pv_forecast_kw"], dtype=float),
        import_price_yuan_per_kwh=np.asarray(inp["import_price_yuan_per_kwh"], dtype=float),
        export_price_yuan_per_kwh=np.asarray(inp["export_price_yuan_per_kwh"], dtype=float),
        subsidy_yuan_per_kwh=rate if counted else np.zeros(len(rate)),
        day_of_interval=np.array([(d - days[0]).days for d in days], dtype=int),
        storage=storage, grid=_spec(GridSpec, grid),
        shiftable=tuple(_spec(ShiftableLoad, sh) for sh in par["shiftable_loads"]),
        interval_labels=tuple(str(t) for t in ts),
        month_of_interval=months if months[-1] > 0 else None)
    flows = FlowArrays(**{f.name: np.asarray(iv[f.name], dtype=float)
                          for f in fields(FlowArrays)})
    return p, flows, rate


def intervals_frame(plan: dict[str, Any]) -> pd.DataFrame:
    """Inputs and decisions per interval, indexed by interval start (units in the names)."""
    inputs = {k: v for k, v in plan["inputs"].items() if k != "timestamps"}
    df = pd.DataFrame({**inputs, **plan["intervals"]})
    df.index = pd.DatetimeIndex(pd.to_datetime(plan["inputs"]["timestamps"]), name="start")
    return df


def plan_csv(plan: dict[str, Any]) -> str:
    """Per-interval CSV text."""
    return intervals_frame(plan).to_csv(float_format="%.6f")


SUMMARY_COLUMNS = {
    "net_cost_yuan": "net cost [yuan]",
    "baseline_cost_yuan": "baseline [yuan]",
    "savings_yuan": "savings [yuan]",
    "demand_charge_yuan": "demand Δ [yuan]",
    "subsidy_yuan": "subsidy [yuan]",
    "discharge_kwh": "discharge [kWh]",
    "peak_import_kw": "peak [kW]",
    "renewable_share": "RE share [-]",
}


def status_line(plan: dict[str, Any]) -> str:
    """What a plan that is not certified within its gap must say wherever it is shown."""
    solver = plan["solver"]
    return (f"status: {plan['status'].upper()} - the best plan the time budget allowed, "
            f"proven within {solver['optimality_gap']:.3%} of the optimum, above the "
            f"required {solver['mip_rel_gap_required']:.3%}")


def summary_row(plan: dict[str, Any]) -> dict[str, Any]:
    """One line of a fleet summary: KPIs and solver facts of a plan."""
    k = plan["kpis"]
    row = {"site": plan["site_id"]}
    row.update({label: k[key] for key, label in SUMMARY_COLUMNS.items()})
    row["gap [%]"] = 100 * plan["solver"]["optimality_gap"]
    row["status"] = plan.get("status", "optimal")
    row["method"] = plan["solver"]["method"]
    row["solve [s]"] = plan["solver"]["seconds"]
    return row


def summary_table(plans: list[dict[str, Any]]) -> pd.DataFrame:
    """Fleet summary, one row per plan, with a TOTAL row for the additive columns."""
    df = pd.DataFrame([summary_row(p) for p in plans]).set_index("site")
    if len(df) > 1:
        additive = [c for c in df.columns if c.endswith(("[yuan]", "[kWh]"))]
        df.loc["TOTAL", additive] = df[additive].sum()
    return df


def format_table(df: pd.DataFrame) -> str:
    """Fixed-width text of a summary table."""
    fmt = {c: (lambda v: "" if pd.isna(v) else f"{0.0 if abs(v) < 0.5 else v:,.0f}")
           for c in df.columns if c.endswith(("[yuan]", "[kWh]", "[kW]"))}  # no "-0"
    fmt["RE share [-]"] = lambda v: "" if pd.isna(v) else f"{v:.2f}"
    fmt["gap [%]"] = lambda v: "" if pd.isna(v) else f"{v:.3f}"
    fmt["solve [s]"] = lambda v: "" if pd.isna(v) else f"{v:.2f}"
    return df.to_string(formatters={c: f for c, f in fmt.items() if c in df.columns},
                        na_rep="")


def site_table(plan: dict[str, Any]) -> str:
    """Human summary of one plan: the initial state it started from and its flags, KPIs,
    then hourly means of powers [kW] (they balance: import - export = load + flexible -
    PV + curtailed + charge - discharge) and prices [yuan/kWh] with the state of charge at
    the end of each hour [kWh]."""
    lines = [f"{plan['site_id']} {plan['site_name']}  {plan['start']} .. {plan['end']}",
             f"solver: {plan['solver']['name']} {plan['solver']['version']}, "
             f"{plan['solver']['method']}, gap {plan['solver']['optimality_gap']:.4%}, "
             f"{plan['solver']['seconds']:.2f} s"]
    if plan.get("status", "optimal") != "optimal":
        lines.append(status_line(plan))
    ini = plan.get("initial_state")
    if ini:
        soc = ("none (no battery)" if ini.get("soc_initial_kwh") is None
               else f"{ini['soc_initial_kwh']:,.1f} kWh ({ini['soc_initial_source']})")
        lines.append(f"initial state: month peak {ini['month_peak_kw']:,.1f} kW "
                     f"({ini['month_peak_source']}); SOC {soc}")
    lines.extend(f"flag: {f}" for f in plan.get("flags", []))
    for key, value in plan["kpis"].items():
        lines.append(f"  {key:<28} {value:>14,.3f}")
    df = intervals_frame(plan)
    # the columns balance: import - export = load + flexible - (pv - curtailed) + charge -
    # discharge
    powers = ["load_kw", "flexible_load_kw", "pv_forecast_kw", "pv_curtailed_kw",
              "charge_kw", "discharge_kw", "grid_import_kw", "grid_export_kw",
              "import_price_yuan_per_kwh"]
    hourly = df[powers].resample("1h").mean()
    hourly["soc_end_kwh"] = df["soc_kwh"].resample("1h").last()
    hourly.index = hourly.index.strftime("%m-%d %H:%M")
    lines.append("")
    fmt = {c: (lambda v: f"{v:,.1f}") for c in hourly.columns}
    fmt["import_price_yuan_per_kwh"] = lambda v: f"{v:.4f}"
    lines.append(hourly.to_string(formatters=fmt))
    return "\n".join(lines)


PERIOD_COLOURS = {"valley": "#d8ecd8", "deep_valley": "#b6dcb6", "flat": "#f4f4f4",
                  "peak": "#fbe3c8", "critical_peak": "#f6c1b4"}


def plot_plan(plan: dict[str, Any], path: str | Path) -> Path:
    """PNG of one plan: load, PV, grid, battery power, SOC, with tariff period bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = intervals_frame(plan)
    x = df.index.tz_convert("Asia/Shanghai").tz_localize(None)
    step = x[1] - x[0] if len(x) > 1 else pd.Timedelta(minutes=15)
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(11, 7), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1.4]})
    for a in (ax, ax2):
        for t, period in zip(x, df["period"], strict=True):
            a.axvspan(t, t + step, color=PERIOD_COLOURS.get(period, "white"), lw=0, zorder=0)
    edges = x.append(pd.DatetimeIndex([x[-1] + step]))

    def steps(a: Any, values: pd.Series, **kw: Any) -> None:
        """Interval averages as steps that run to the end of the last interval."""
        v = values.to_numpy()
        a.step(edges, [*v, v[-1]], where="post", **kw)

    steps(ax, df["load_kw"] + df["flexible_load_kw"], label="load incl. flexible",
          color="black")
    steps(ax, df["pv_forecast_kw"], label="PV forecast", color="#e0a000")
    steps(ax, df["grid_import_kw"] - df["grid_export_kw"], label="grid (import +)",
          color="#1f5fbf")
    ax.bar(x, df["discharge_kw"] - df["charge_kw"], width=step, align="edge",
           label="battery (discharge +)", color="#2a9d5c", alpha=0.7)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("power [kW]")
    ax.legend(loc="upper left", fontsize=8, ncol=2)
    k = plan["kpis"]
    ax.set_title(f"{plan['site_id']} {plan['site_name']} — {plan['start'][:10]}   "
                 f"net cost {k['net_cost_yuan']:,.0f} yuan, savings {k['savings_yuan']:,.0f} "
                 f"yuan, subsidy {k['subsidy_yuan']:,.0f} yuan", fontsize=10)
    storage = plan["parameters"]["storage"]
    soc0 = storage["soc_initial_kwh"] if storage else 0.0
    # SOC is a state at interval ends; constant power makes it linear in between.
    ax2.plot(edges, [soc0, *df["soc_kwh"]], color="#2a9d5c", label="SOC")
    ax2.set_ylabel("SOC [kWh]")
    price = ax2.twinx()
    steps(price, df["import_price_yuan_per_kwh"], color="#c0392b", lw=0.8)
    price.set_ylabel("price [yuan/kWh]", color="#c0392b")
    ax2.set_xlabel("local time (Asia/Shanghai); bands: green valley, grey flat, orange peak, "
                   "red critical peak")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
