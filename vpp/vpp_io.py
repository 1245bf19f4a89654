"""Text and plots of a VPP day: feeders, demand-response delivery, the fleet stack."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

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
        rows[e["id"]] = {
            "type": e["type"], "window": f"{e['start'][11:16]}-{e['end'][11:16]}",
            "requested [kW]": e["requested_kw"], "min delivered [kW]": e["min_delivered_kw"],
            "delivered [kWh]": e["delivered_kwh"], "shortfall [kWh]": e["shortfall_kwh"],
            "compensation [yuan]": e["compensation_yuan"],
            "penalty [yuan]": e["shortfall_penalty_yuan"],
        }
    return format_table(pd.DataFrame(rows).T)


def plot_fleet_stack(plans: dict[str, dict[str, Any]], path: str) -> None:
    """Grid import stacked by site, with fleet PV and net storage discharge [kW]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(plans.values()))
    t = pd.DatetimeIndex(first["inputs"]["timestamps"])
    imports = np.array([p["intervals"]["grid_import_kw"] for p in plans.values()]) / 1000
    pv = sum(np.asarray(p["intervals"]["pv_used_kw"]) for p in plans.values()) / 1000
    storage = sum(np.asarray(p["intervals"]["discharge_kw"]) - np.asarray(
        p["intervals"]["charge_kw"]) for p in plans.values()) / 1000
    fig, ax = plt.subplots(figsize=(13, 5.5))
    colors = plt.cm.tab20(np.linspace(0, 1, len(plans)))
    ax.stackplot(t, imports, labels=list(plans), colors=colors, step="post", alpha=0.85)
    ax.step(t, pv, where="post", color="#e0a000", lw=2, label="PV used (fleet)")
    ax.step(t, storage, where="post", color="k", lw=1.5, label="storage discharge − charge")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("MW")
    ax.set_title(f"Fleet grid import by site, {t[0]:%Y-%m-%d}")
    ax.legend(ncol=6, fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.08))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_event_delivery(events: list[dict[str, Any]], path: str) -> None:
    """Delivered change of aggregate import against the request, per event [MW]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(events), 1, figsize=(10, 3.2 * len(events)), squeeze=False)
    for ax, e in zip(axes[:, 0], events, strict=True):
        n = len(e["delivered_kw"])
        t = pd.date_range(e["start"], periods=n + 1, freq="15min")  # with the window's end
        delivered = np.append(e["delivered_kw"], e["delivered_kw"][-1]) / 1000
        ax.step(t, delivered, where="post", lw=2, label="delivered")
        ax.step(t, np.full(n + 1, e["requested_kw"] / 1000), where="post", ls="--",
                color="r", label="requested")
        t = t[:-1]
        ax.bar(t, np.asarray(e["shortfall_kw"]) / 1000, width=0.01, align="edge",
               color="#f4a", alpha=0.6, label="shortfall")
        ax.set_ylabel("MW")
        ax.set_title(f"{e['id']} ({e['type']}): {e['delivered_kwh']:,.0f} kWh delivered, "
                     f"{e['compensation_yuan']:,.0f} yuan")
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
