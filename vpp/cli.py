"""The ``vpp`` command line.

Errors in the user's input or infeasible plans end with a one-paragraph message and exit
status 2 (never a traceback); ``--verbose`` adds solver logging.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import click
import pandas as pd

from forecasts.load import read_meter_csv
from forecasts.weather import Weather, read_weather
from models.errors import InfeasiblePlanError, InvalidInputError
from vpp.audit import audit_plan
from vpp.catalog import Catalog
from vpp.cli_forecast import catalog_of, load, pv
from vpp.cli_simulate import simulate_cmd
from vpp.coupled import plan_vpp
from vpp.flexibility import fleet_envelope, plot_envelope
from vpp.network import load_events
from vpp.plan_io import (
    format_table,
    plan_csv,
    plan_json,
    plot_plan,
    read_plan,
    site_table,
    summary_table,
)
from vpp.planning import TZ, PlanOptions, horizon, plan_site, usable_cores
from vpp.subsidy import subsidy_window
from vpp.tariffs import price_series
from vpp.vpp_io import events_text, feeder_text, plot_event_delivery, plot_fleet_stack


def tomorrow() -> dt.date:
    """Tomorrow in Changzhou."""
    return (pd.Timestamp.now(tz=TZ) + pd.Timedelta(days=1)).date()


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (InvalidInputError, InfeasiblePlanError, ValueError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder laid out like vpp/data (tariffs/, policies/, fleet/, loads/). "
                   "Default: $VPP_DATA_DIR or the shipped data.")
@click.option("--fleet", type=click.Path(dir_okay=False), default=None,
              help="Fleet TOML file instead of the shipped 30 pilot microgrids.")
@click.option("--calibrations", type=click.Path(file_okay=False), default=None,
              envvar="VPP_CALIBRATIONS",
              help="Folder of PV calibrations (<site>.toml from `vpp pv calibrate --save`). "
                   "Default: $VPP_CALIBRATIONS or <data-dir>/calibrations if it exists.")
@click.option("--feeders", type=click.Path(dir_okay=False), default=None,
              help="Feeder file (shared import/export caps) instead of the shipped one.")
@click.option("-v", "--verbose", is_flag=True, help="Log solver steps to stderr.")
@click.pass_context
def main(ctx: click.Context, data_dir: str | None, fleet: str | None,
         calibrations: str | None, feeders: str | None, verbose: bool) -> None:
    """Dispatch optimizer for Changzhou's pilot smart microgrids and their VPP."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = {"data_dir": data_dir, "fleet": fleet, "calibrations": calibrations,
               "feeders": feeders}


main.add_command(pv)
main.add_command(load)
main.add_command(simulate_cmd, name="simulate")


def _series(path: str | None, column: str) -> pd.Series | None:
    return None if path is None else read_meter_csv(path, column=column)


@main.command()
@click.option("--site", "site_id", help="Site id, e.g. CZ-MG-01.")
@click.option("--all", "all_sites", is_flag=True, help="Plan every site of the fleet.")
@click.option("--date", "date", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="First day (local). Default: tomorrow.")
@click.option("--days", type=click.IntRange(1, 7), default=1, show_default=True,
              help="Horizon in days.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True, help="Output of a single-site plan.")
@click.option("--out", type=click.Path(), default=None,
              help="File (one site) or folder (--all) to write plans to.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="PNG plot of a single-site plan.")
@click.option("--subsidy-blind", is_flag=True, help="Leave the subsidy out of the objective.")
@click.option("--subsidy-rate", type=float, default=None,
              help="Subsidy [yuan/kWh discharged], 0..policy maximum (default policy rate).")
@click.option("--month-peak-kw", type=float, default=0.0, show_default=True,
              help="Highest 15-min import so far this month [kW].")
@click.option("--soc-initial", type=float, default=None, help="Initial SOC [0-1 of energy].")
@click.option("--soc-terminal", type=float, default=None,
              help="Lowest end-of-horizon SOC [0-1 of energy] (default: the initial SOC).")
@click.option("--tariff-version", default=None,
              help="Force a tariff version, e.g. su-fagaijiage-2023-555.")
@click.option("--gap", type=float, default=1e-3, show_default=True,
              help="Certified relative optimality gap required [-].")
@click.option("--time-limit", type=float, default=60.0, show_default=True,
              help="HiGHS time limit per call [s].")
@click.option("--method", type=click.Choice(["auto", "milp"]), default="auto",
              show_default=True)
@click.option("--jobs", type=click.IntRange(0, 256), default=0, show_default=True,
              help="Worker processes for --all; 0 = one per CPU core.")
@click.option("--load-csv", type=click.Path(exists=True, dir_okay=False), default=None,
              help="15-min meter CSV (timestamp,load_kw) to use as the load.")
@click.option("--pv-csv", type=click.Path(exists=True, dir_okay=False), default=None,
              help="15-min CSV (timestamp,pv_kw) to use as the PV forecast.")
@click.option("--weather", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Weather forecast (CSV, EPW or TMY3) for the PV forecast of every planned "
                   "site. Default: the Changzhou climatology.")
@click.option("--weather-label", type=click.Choice(["start", "end", "instant"]), default=None,
              help="What a weather CSV row's timestamp means (default start).")
@click.option("--pv-quantile", type=click.Choice(["p50", "p10", "p90"]), default="p50",
              show_default=True, help="PV forecast quantile to plan against.")
@click.option("--events", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Demand-response events (JSON) for --all; see docs/vpp.md.")
@click.option("--no-feeders", is_flag=True,
              help="Ignore the shared feeder limits (--all plans every site on its own).")
@click.option("--plot-fleet", type=click.Path(dir_okay=False), default=None,
              help="PNG: fleet import stacked by site, PV and storage (--all).")
@click.option("--plot-events", type=click.Path(dir_okay=False), default=None,
              help="PNG: demand-response delivery against the request (--all --events).")
@click.pass_context
def plan(ctx: click.Context, site_id: str | None, all_sites: bool, date: dt.datetime | None,
         days: int, fmt: str, out: str | None, plot: str | None, subsidy_blind: bool,
         subsidy_rate: float | None, month_peak_kw: float, soc_initial: float | None,
         soc_terminal: float | None, tariff_version: str | None, gap: float,
         time_limit: float, method: str, jobs: int, load_csv: str | None,
         pv_csv: str | None, weather: str | None, weather_label: str | None,
         pv_quantile: str, events: str | None, no_feeders: bool, plot_fleet: str | None,
         plot_events: str | None) -> None:
    """Day-ahead dispatch plan for one site (--site) or the whole fleet (--all).

    \b
    vpp plan --site CZ-MG-01 --date 2026-07-15 --plot plan.png
    vpp plan --site CZ-MG-01 --date 2026-07-15 --format json --out plan.json
    vpp plan --all --date 2026-07-15 --out plans/
    """
    if bool(site_id) == all_sites:
        raise click.UsageError("give exactly one of --site ID or --all")
    if all_sites and (load_csv or pv_csv or plot):
        raise click.UsageError("--load-csv, --pv-csv and --plot are for a single --site")
    if site_id and (events or plot_fleet or plot_events):
        raise click.UsageError("--events, --plot-fleet and --plot-events are for --all")
    options = PlanOptions(
        days=days, subsidy_aware=not subsidy_blind, subsidy_rate_yuan_per_kwh=subsidy_rate,
        month_peak_kw=month_peak_kw, soc_initial_frac=soc_initial,
        soc_terminal_min_frac=soc_terminal, tariff_version=tariff_version, mip_rel_gap=gap,
        time_limit_s=time_limit, method=method, pv_quantile=pv_quantile,
    )
    options.validate()
    if pv_csv and weather:
        raise click.UsageError("give --pv-csv (a PV forecast) or --weather, not both")
    start = date.date() if date else tomorrow()
    catalog = catalog_of(ctx)
    wx = read_weather(weather, TZ, weather_label) if weather else None
    if site_id:
        p = plan_site(catalog, site_id, start, options, pv_kw=_series(pv_csv, "pv_kw"),
                      load_kw=_series(load_csv, "load_kw"), weather=wx)
        text = {"json": plan_json, "csv": plan_csv, "table": site_table}[fmt](p)
        if out:
            Path(out).write_text(text if fmt != "table" else plan_json(p), "utf-8")
            click.echo(f"wrote {out}", err=True)
        else:
            click.echo(text)
        if plot:
            plot_plan(p, plot)
            click.echo(f"wrote {plot}", err=True)
        return
    _plan_all(catalog, start, options, out, jobs or usable_cores(), wx, events, not no_feeders,
              plot_fleet, plot_events)


def _plan_all(catalog: Catalog, start: dt.date, options: PlanOptions, out: str | None,
              jobs: int, weather: Weather | None = None, events: str | None = None,
              use_feeders: bool = True, plot_fleet: str | None = None,
              plot_events: str | None = None) -> None:
    folder = Path(out) if out else None
    if folder:
        folder.mkdir(parents=True, exist_ok=True)
    total = len(catalog.fleet.sites)
    done = [0]
    failed: list[str] = []
    t0 = time.perf_counter()

    def progress(site_id: str, p: dict | None, err: Exception | None) -> None:
        done[0] += 1
        if p is None:
            failed.append(site_id)
            click.echo(f"[{done[0]:>2}/{total}] {site_id} FAILED: {err}", err=True)
            return
        click.echo(f"[{done[0]:>2}/{total}] {site_id} {p['solver']['method']:<9} "
                   f"gap {p['solver']['optimality_gap']:.3%} {p['solver']['seconds']:.2f} s",
                   err=True)

    specs = load_events(events) if events else None
    feeders = catalog.feeder_caps if use_feeders else ()
    day = plan_vpp(catalog, start, options, feeders, specs, weather, jobs, on_plan=progress)
    plans = day.plans
    if not plans:
        raise InfeasiblePlanError("no site could be planned", status="fleet")
    stamp = start.isoformat()
    if folder:
        for sid, p in plans.items():
            (folder / f"{sid}_{stamp}.json").write_text(plan_json(p), "utf-8")
        for sid, p in day.baselines.items():
            (folder / f"{sid}_{stamp}_baseline.json").write_text(plan_json(p), "utf-8")
    table = summary_table(list(plans.values()))
    click.echo(f"\nDay-ahead plans for {start} ({options.days} day(s)), "
               f"{len(plans)}/{total} sites, {time.perf_counter() - t0:.1f} s on {jobs} "
               f"process(es)"
               + (" — fleet data is ILLUSTRATIVE" if catalog.fleet.illustrative else ""))
    click.echo("demand Δ: increase of the month's demand charge above "
               f"--month-peak-kw={options.month_peak_kw:g} kW; savings vs the same day "
               "without storage or flexibility, subsidy included\n")
    click.echo(format_table(table))
    if day.feeders:
        click.echo("\nShared network limits (peak aggregate vs cap, kW):")
        click.echo(feeder_text(day.feeders))
    if day.events:
        click.echo("\nDemand-response events (change of aggregate import vs baseline):")
        click.echo(events_text(day.events))
        click.echo("\nSettlement per site [kWh, yuan] (event plan vs its baseline plan):")
        click.echo(format_table(day.settlement))
    if folder:
        table.to_csv(folder / f"summary_{stamp}.csv", float_format="%.6f")
        report = {"date": stamp, "feeders": day.feeders, "events": day.events,
                  "timings_s": day.timings}
        if day.settlement is not None:
            day.settlement.to_csv(folder / f"settlement_{stamp}.csv", float_format="%.6f")
            report["settlement"] = day.settlement.round(6).to_dict(orient="index")
        (folder / f"vpp_{stamp}.json").write_text(json.dumps(report, indent=1), "utf-8")
        click.echo(f"\nwrote {len(plans)} plans, summary_{stamp}.csv and vpp_{stamp}.json "
                   f"to {folder}")
    if plot_fleet:
        plot_fleet_stack(plans, plot_fleet)
        click.echo(f"wrote {plot_fleet}", err=True)
    if plot_events:
        if not day.events:
            raise click.UsageError("--plot-events needs --events")
        plot_event_delivery(day.events, plot_events)
        click.echo(f"wrote {plot_events}", err=True)
    if failed:
        click.echo(f"\n{len(failed)} site(s) failed: {', '.join(failed)}", err=True)
        sys.exit(1)


@main.command()
@click.pass_context
def sites(ctx: click.Context) -> None:
    """List the fleet: PV, storage, grid connection and subsidy window of each site."""
    catalog = catalog_of(ctx)
    rows = []
    for s in catalog.fleet.sites:
        st = s.storage
        w = subsidy_window(catalog.policy, st.power_kw, st.grid_connection_date) if st else None
        rows.append({
            "site": s.id, "district": s.district, "name": s.name,
            "PV [kWp]": s.pv_dc_kwp,
            "storage [kW/kWh]": f"{st.power_kw:g}/{st.energy_kwh:g}" if st else "-",
            "connected": st.grid_connection_date.isoformat() if st else "-",
            "subsidy window": f"{w[0]}..{w[1]}" if w else "not eligible",
            "export [kW]": s.grid.export_limit_kw or "anti-backflow",
            "billing": s.billing_basis,
        })
    click.echo(f"fleet {catalog.fleet.version}: {catalog.fleet.source}")
    click.echo(pd.DataFrame(rows).set_index("site").to_string())


@main.command()
@click.option("--date", "date", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Day (local). Default: tomorrow.")
@click.option("--tariff", "tariff_id", default="jiangsu-ci-two-part-1-10kv", show_default=True)
@click.option("--tariff-version", default=None)
@click.option("--transformer-kva", type=float, default=1000.0, show_default=True,
              help="Critical peak applies at or above the tariff's threshold [kVA].")
@click.pass_context
def tariff(ctx: click.Context, date: dt.datetime | None, tariff_id: str,
           tariff_version: str | None, transformer_kva: float) -> None:
    """Show the time-of-use periods and prices of one day."""
    catalog = catalog_of(ctx)
    day = date.date() if date else tomorrow()
    idx = horizon(day)
    prices = price_series(catalog.tariffs, tariff_id, idx, transformer_kva, tariff_version)
    t = catalog.tariffs.select(tariff_id, day, tariff_version)
    click.echo(f"{t.id} / {t.version} (from {t.effective_from}): {t.source}")
    change = prices["period"].ne(prices["period"].shift())
    blocks = prices[change]
    ends = [*blocks.index[1:], idx[-1] + pd.Timedelta(minutes=15)]
    for (start, row), end in zip(blocks.iterrows(), ends, strict=True):
        click.echo(f"  {start:%H:%M}-{end:%H:%M}  {row['period']:<13} "
                   f"{row['import_price_yuan_per_kwh']:.4f} yuan/kWh")
    click.echo(f"  export {t.export_price_yuan_per_kwh:.4f} yuan/kWh; basic charge "
               f"{t.demand_yuan_per_kw_month:g} yuan/kW·month (demand) or "
               f"{t.capacity_yuan_per_kva_month:g} yuan/kVA·month (capacity)")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def audit(files: tuple[str, ...]) -> None:
    """Recheck plan JSON files: energy balance, SOC, limits, directions, costs, subsidy."""
    bad = 0
    for f in files:
        problems = audit_plan(read_plan(f))
        if problems:
            bad += 1
            click.echo(f"{f}: {len(problems)} problem(s)")
            for p in problems:
                click.echo(f"  - {p}")
        else:
            click.echo(f"{f}: ok")
    if bad:
        sys.exit(1)


if __name__ == "__main__":
    main()


@main.command()
@click.option("--date", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Day to plan (default: tomorrow); ignored with --plans.")
@click.option("--plans", "plans_dir", type=click.Path(exists=True, file_okay=False),
              default=None, help="Folder of plans from `vpp plan --all --out` to use as is.")
@click.option("--duration", type=click.FloatRange(0.25, 24), default=1.0, show_default=True,
              help="How long each change must be held [h].")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="CSV to write.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="PNG to write.")
@click.option("--jobs", type=click.IntRange(0, 256), default=0, show_default=True,
              help="Worker processes when planning; 0 = one per CPU core.")
@click.pass_context
def flex(ctx: click.Context, date: dt.datetime | None, plans_dir: str | None, duration: float,
         out: str | None, plot: str | None, jobs: int) -> None:
    """Flexibility envelope: kW the fleet and each site can add to or shed from the planned
    grid import, held for --duration hours from each interval.

    \b
    vpp flex --date 2026-07-15 --duration 2 --plot flex.png
    vpp flex --plans plans/ --duration 1 --out flex.csv
    """
    catalog = catalog_of(ctx)
    if plans_dir:
        files = sorted(p for p in Path(plans_dir).glob("*.json")
                       if not p.name.startswith(("vpp_", "summary_"))
                       and not p.stem.endswith("_baseline"))
        plans = {}
        for f in files:
            p = read_plan(f)
            plans[p["site_id"]] = p
        if not plans:
            raise InvalidInputError(f"no plan JSON files in {plans_dir}")
        starts = {p["start"] for p in plans.values()}
        if len(starts) > 1:
            raise InvalidInputError(f"plans in {plans_dir} start at different times: "
                                    f"{sorted(starts)}")
    else:
        start = date.date() if date else tomorrow()
        plans = plan_vpp(catalog, start, PlanOptions(), catalog.feeder_caps, None, None,
                         jobs or usable_cores()).plans
    env = fleet_envelope(plans, duration, catalog.feeder_caps)
    hourly = env[["fleet_net_import_kw", "fleet_down_kw", "fleet_up_kw"]].iloc[::4]
    hourly.index = hourly.index.strftime("%H:%M")
    hourly.columns = ["planned net import [kW]", f"can shed for {duration:g} h [kW]",
                      f"can add for {duration:g} h [kW]"]
    click.echo(f"Fleet flexibility envelope, {len(plans)} sites, from the plans of "
               f"{env.index[0]:%Y-%m-%d} (hourly rows; the CSV has every 15 minutes and "
               "every site)")
    click.echo(format_table(hourly))
    if out:
        env.to_csv(out, float_format="%.3f")
        click.echo(f"wrote {out}", err=True)
    if plot:
        plot_envelope(env, duration, plot)
        click.echo(f"wrote {plot}", err=True)
