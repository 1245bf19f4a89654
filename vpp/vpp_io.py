"""Text and plots of a VPP day: feeders, demand-response delivery, the fleet stack."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from vpp.network import window_text
from vpp.plan_io import format_table


def feeder_text(feeders: list[dict[str, Any]]) -> str:
    """The feeders' peak net flows at their heads against their caps [kW]."""
    rows = {}
    for f in feeders:
        rows[f["feeder"]] = {
            "sites": len(f["sites"]),
            "peak net import [kW]": f["peak_net_import_kw"],
            "import cap [kW]": f["import_cap_kw"] if f["import_cap_kw"] is not None else np.nan,
            "peak net export [kW]": f["peak_net_export_kw"],
            "export cap [kW]": f["export_cap_kw"] if f["export_cap_kw"] is not None else np.nan,
            "solved": "jointly" if f.get("solved_jointly") else "independently",
        }
    return format_table(pd.DataFrame(rows).T)


def events_text(events: list[dict[str, Any]]) -> str:
    rows = {}
    for e in events:
        window = window_text(pd.Timestamp(e["start"]), pd.Timestamp(e["end"]), "%m-%d")
        rows[e["id"]] = {
            "type": e["type"], "window": window,
            "requested [kW]": e["requested_kw"], "min delivered [kW]": e["min_delivered_kw"],
            "delivered [kWh]": e["delivered_kwh"], "shortfall [kWh]": e["shortfall_kwh"],
            "compensation [yuan]": e["compensation_yuan"],
            "penalty [yuan]": e["shortfall_penalty_yuan"],
        }
    return format_table(pd.DataFrame(rows).T)


def import_groups(plans: dict[str, dict[str, Any]],
                  feeders: list[tuple[str, list[str]]] | None = None,
                  top: int = 9) -> dict[str, list[str]]:
    """Sites grouped for a stacked chart that stays readable: by feeder (each feeder one
    band; the sites behind no shared feeder each a band of their own, or one band together
    when that would make too many), or without
    feeders the ``top`` sites by imported energy and the rest together."""
    if feeders:
        groups: dict[str, list[str]] = {}
        placed: set[str] = set()
        for name, members in feeders:
            inside = [s for s in members if s in plans]
            if inside:
                groups[f"{name} ({len(inside)})"] = inside
                placed.update(inside)
        rest = [s for s in plans if s not in placed]
        if len(groups) + len(rest) <= top + 1:
            groups.update({s: [s] for s in rest})
        elif rest:
            groups[f"no shared feeder ({len(rest)})"] = rest
        return groups
    energy = {s: float(np.sum(p["intervals"]["grid_import_kw"])) for s, p in plans.items()}
    order = sorted(energy, key=energy.get, reverse=True)
    groups = {s: [s] for s in order[:top]}
    if order[top:]:
        groups[f"{len(order) - top} other sites"] = order[top:]
    return groups


def plot_fleet_stack(plans: dict[str, dict[str, Any]], path: str,
                     feeders: list[tuple[str, list[str]]] | None = None) -> None:
    """Grid import stacked by group of sites - by ``feeders`` (name, site ids) when given,
    else the nine largest sites and the rest - with fleet PV and net storage discharge
    [MW]. Every band has a colour of its own."""
    from vpp.plotting import distinct_colours, pyplot

    plt = pyplot()
    first = next(iter(plans.values()))
    t = pd.DatetimeIndex(first["inputs"]["timestamps"])
    groups = import_groups(plans, feeders)
    imports = np.array([sum(np.asarray(plans[s]["intervals"]["grid_import_kw"], float)
                            for s in members) for members in groups.values()]) / 1000
    pv = sum(np.asarray(p["intervals"]["pv_used_kw"]) for p in plans.values()) / 1000
    storage = sum(np.asarray(p["intervals"]["discharge_kw"]) - np.asarray(
        p["intervals"]["charge_kw"]) for p in plans.values()) / 1000
    fig, ax = plt.subplots(figsize=(13, 5.5))
    ax.stackplot(t, imports, labels=list(groups), colors=distinct_colours(len(groups)),
                 step="post", alpha=0.85)
    ax.step(t, pv, where="post", color="#e0a000", lw=2, label="PV used (fleet)")
    ax.step(t, storage, where="post", color="k", lw=1.5, label="storage discharge minus charge")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("MW")
    ax.set_title(f"Fleet grid import by {'feeder' if feeders else 'site'}, {len(plans)} sites, "
                 f"{t[0]:%Y-%m-%d}")
    ax.legend(ncol=4, fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.08))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _window_kwh(plan: dict[str, Any], start: str, end: str) -> float:
    """Net import [kWh] of ``plan`` in [start, end)."""
    t = pd.DatetimeIndex(plan["inputs"]["timestamps"])
    w = (t >= pd.Timestamp(start)) & (t < pd.Timestamp(end))
    net = (np.asarray(plan["intervals"]["grid_import_kw"], float)
           - np.asarray(plan["intervals"]["grid_export_kw"], float))
    return float(net[w].sum() * plan["interval_minutes"] / 60)


def plot_event_delivery(events: list[dict[str, Any]], path: str,
                        baselines: dict[str, dict[str, Any]] | None = None,
                        plans: dict[str, dict[str, Any]] | None = None) -> None:
    """Per event: left, the delivered change of aggregate import against the request, the
    shortfall shaded [MW]; right, each participating site's net import in the event window
    in its baseline plan and in the event plan, the difference being its delivery [MWh]."""
    from vpp.plotting import pyplot

    plt = pyplot()
    per_site = baselines is not None and plans is not None
    fig, axes = plt.subplots(len(events), 2 if per_site else 1, squeeze=False,
                             figsize=(14 if per_site else 10, 3.8 * len(events)))
    for row, e in zip(axes, events, strict=True):
        ax = row[0]
        n = len(e["delivered_kw"])
        t = pd.date_range(e["start"], periods=n + 1, freq="15min")  # with the window's end
        delivered = np.append(e["delivered_kw"], e["delivered_kw"][-1]) / 1000
        requested = np.full(n + 1, e["requested_kw"] / 1000)
        ax.step(t, delivered, where="post", lw=2, label="delivered")
        ax.step(t, requested, where="post", ls="--", color="r", label="requested")
        ax.fill_between(t, delivered, requested, where=delivered < requested, step="post",
                        color="#f4a", alpha=0.4, label="shortfall")
        ax.set_ylim(bottom=0)
        ax.set_ylabel("MW")
        ax.set_title(f"{e['id']} ({e['type']}): {e['delivered_kwh']:,.0f} kWh delivered, "
                     f"{e['shortfall_kwh']:,.0f} kWh short, {e['compensation_yuan']:,.0f} yuan")
        ax.legend(loc="lower right", fontsize=8)
        if not per_site:
            continue
        ax = row[1]
        sites = [s for s in e["by_site_kwh"] if s in baselines and s in plans]
        x = np.arange(len(sites))
        base = np.array([_window_kwh(baselines[s], e["start"], e["end"]) for s in sites]) / 1e3
        with_event = np.array([_window_kwh(plans[s], e["start"], e["end"])
                               for s in sites]) / 1e3
        ax.bar(x - 0.2, base, 0.4, color="#95a5a6", label="baseline plan")
        ax.bar(x + 0.2, with_event, 0.4, color="#3a7bd5", label="event plan")
        for xi, b, w in zip(x, base, with_event, strict=True):
            ax.annotate(f"{b - w:+.1f}", (xi, max(b, w)), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, sites, rotation=70, fontsize=7)
        ax.set_ylabel("net import in the window [MWh]")
        ax.set_title("per site: baseline vs event plan (label: delivered MWh)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
