"""Flexibility envelope: how far each site, and the fleet, can move its grid import from the
plan and hold it for a given duration.

For a window of ``k`` intervals starting at ``t`` a site can hold a constant change ``Δ`` of
its net import (import − export) if, in every interval ``τ`` of the window:

* **down** (less import): the battery's extra discharge stays within its rating,
  ``Δ_b <= P - (dis_τ - ch_τ)``, and within the energy above the SOC floor,
  ``Δ_b (τ - t + 1) dt / η_d <= soc_τ - soc_min``; within what is left of each day's cycle
  cap after the plan's own discharge that day, ``Δ_b h_d <= cycles_max E - discharged_d``
  (``h_d`` the window's hours on day ``d``); a battery that may not export only displaces
  import, ``Δ_b <= imp_τ``; curtailed PV can be released, ``Δ_pv <= curtailed_τ``; and the
  net import stays above ``-export_limit``;
* **up** (more import): extra charge within the rating, ``Δ_b <= P + (dis_τ - ch_τ)``, and
  within the room below the SOC ceiling, ``Δ_b (τ - t + 1) dt η_c <= soc_max - soc_τ``; PV in
  use can be curtailed, ``Δ_pv <= pv_used_τ``; the net import stays below ``import_limit``.

Windows that run past the plan's horizon are left empty (NaN).

``Δ = min over the window of each part, summed`` - a conservative (never optimistic) figure,
because each part takes its own worst interval. Shiftable loads are not counted (their energy
is due within their window), nor is what it costs to restore the SOC afterwards. The fleet's
envelope is the sum over sites, cut by each feeder's headroom to its caps on the net flow at
the feeder head (``import_cap - Σ net`` up, ``Σ net + export_cap`` down, the window's least).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models import FeederCap


def _arr(plan: dict, group: str, key: str) -> np.ndarray:
    return np.asarray(plan[group][key], dtype=float)


def _window_min(x: np.ndarray, k: int) -> np.ndarray:
    """min of x over [t, t+k) for every t; NaN where the window runs past the horizon (the
    plan says nothing about what comes after)."""
    n = len(x)
    return np.array([x[t:t + k].min() if t + k <= n else np.nan for t in range(n)])


def site_envelope(plan: dict[str, Any], duration_h: float) -> pd.DataFrame:
    """``up_kw`` and ``down_kw`` [kW] for windows of ``duration_h`` starting at each interval
    of ``plan`` (see the module docstring)."""
    index = pd.DatetimeIndex(plan["inputs"]["timestamps"])
    n = len(index)
    dt = plan["interval_minutes"] / 60
    k = max(1, round(duration_h / dt))
    imp, exp = _arr(plan, "intervals", "grid_import_kw"), _arr(plan, "intervals",
                                                                "grid_export_kw")
    net = imp - exp
    grid = plan["parameters"]["grid"]
    up_lim = _window_min(grid["import_limit_kw"] - net, k)
    down_lim = _window_min(net + grid["export_limit_kw"], k)
    up_pv = _window_min(_arr(plan, "intervals", "pv_used_kw"), k)
    down_pv = _window_min(_arr(plan, "intervals", "pv_curtailed_kw"), k)
    up_b = down_b = np.zeros(n)
    st = plan["parameters"]["storage"]
    if st is not None:
        dis = _arr(plan, "intervals", "discharge_kw")
        b = dis - _arr(plan, "intervals", "charge_kw")
        soc = _arr(plan, "intervals", "soc_kwh")
        days = np.asarray(index.date)
        cap = st.get("max_cycles_per_day")
        budget = np.inf if cap is None else cap * st["energy_kwh"]
        left = {d: budget - dis[days == d].sum() * dt for d in dict.fromkeys(days)}
        left[days[0]] -= st.get("cycles_used_first_day_kwh") or 0.0
        steps = np.arange(1, n + 1, dtype=float)
        down_b = np.empty(n)
        up_b = np.empty(n)
        for t in range(n):
            if t + k > n:
                down_b[t] = up_b[t] = np.nan
                continue
            w = slice(t, t + k)
            reach = steps[: w.stop - t] * dt
            cycles = min(left[d] / (np.sum(days[w] == d) * dt) for d in set(days[w]))
            down_b[t] = min(
                (st["power_kw"] - b[w]).min(),
                ((soc[w] - st["soc_min_kwh"]) * st["eta_discharge"] / reach).min(),
                cycles, np.inf if st.get("export_allowed", True) else imp[w].min())
            up_b[t] = min(
                (st["power_kw"] + b[w]).min(),
                ((st["soc_max_kwh"] - soc[w]) / (st["eta_charge"] * reach)).min())
        down_b, up_b = np.clip(down_b, 0.0, None), np.clip(up_b, 0.0, None)
    up = np.clip(np.minimum(up_b + up_pv, up_lim), 0.0, None)
    down = np.clip(np.minimum(down_b + down_pv, down_lim), 0.0, None)
    return pd.DataFrame({"up_kw": up, "down_kw": down, "planned_net_import_kw": net},
                        index=index)


def fleet_envelope(plans: dict[str, dict[str, Any]], duration_h: float,
                   feeders: tuple[FeederCap, ...] = ()) -> pd.DataFrame:
    """Per interval: the fleet's ``up_kw``/``down_kw`` and each site's (``<id> up_kw`` ...),
    with feeder headroom applied to the fleet total [kW]."""
    sites = {s: site_envelope(p, duration_h) for s, p in plans.items()}
    first = next(iter(sites.values()))
    dt = next(iter(plans.values()))["interval_minutes"] / 60
    k = max(1, round(duration_h / dt))
    up = sum(e["up_kw"].to_numpy() for e in sites.values())
    down = sum(e["down_kw"].to_numpy() for e in sites.values())
    for f in feeders:
        members = [s for s in f.members if s in sites]
        if not members:
            continue
        f_up = sum(sites[s]["up_kw"].to_numpy() for s in members)
        f_down = sum(sites[s]["down_kw"].to_numpy() for s in members)
        # the caps hold the net flow at the feeder head (models.fleet)
        net = sum(sites[s]["planned_net_import_kw"].to_numpy() for s in members)
        if f.import_cap_kw is not None:
            room = np.clip(_window_min(f.import_cap_kw - net, k), 0.0, None)
            up = up - f_up + np.minimum(f_up, room)
        if f.export_cap_kw is not None:
            room = np.clip(_window_min(net + f.export_cap_kw, k), 0.0, None)
            down = down - f_down + np.minimum(f_down, room)
    out = pd.DataFrame({"fleet_up_kw": up, "fleet_down_kw": down,
                        "fleet_net_import_kw": sum(e["planned_net_import_kw"].to_numpy()
                                                   for e in sites.values())},
                       index=first.index)
    for s, e in sites.items():
        out[f"{s} up_kw"] = e["up_kw"].to_numpy()
        out[f"{s} down_kw"] = e["down_kw"].to_numpy()
    return out


def plot_envelope(env: pd.DataFrame, duration_h: float, path: str) -> None:
    """Planned fleet net import with the band it can be moved to for ``duration_h`` [MW]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = env.index
    net = env["fleet_net_import_kw"] / 1000
    fig, ax = plt.subplots(figsize=(12, 4.5))
    ax.fill_between(t, net - env["fleet_down_kw"] / 1000, net + env["fleet_up_kw"] / 1000,
                    step="post", color="#9ecae1", alpha=0.6,
                    label=f"reachable for {duration_h:g} h")
    ax.step(t, net, where="post", color="k", lw=1.5, label="planned net import")
    ax.set_ylabel("MW")
    ax.set_title(f"Fleet flexibility envelope ({duration_h:g} h windows), {t[0]:%Y-%m-%d}")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
