"""``vpp plan``, ``vpp audit`` and ``vpp flex``: day-ahead plans, their audit, the fleet's
flexibility."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from vpp.cli import catalog_of, day_of, day_option
from vpp.options import PlanOptions, cli_name, cli_options, cli_values, parse, with_policy


def plan_options(catalog: Any, kwargs: dict[str, Any]) -> PlanOptions:
    """The plan options given on the command line, every bad one named at once."""
    model = with_policy(PlanOptions, catalog.policy.max_rate_yuan_per_kwh)
    return parse(model, cli_values(PlanOptions, kwargs), "invalid plan options",
                 names=lambda f: cli_name(f, PlanOptions))


@click.command()
@click.option("--site", "site_id", help="Site id, e.g. CZ-MG-01.")
@click.option("--all", "all_sites", is_flag=True, help="Plan every site of the fleet.")
@day_option("First day (local). Default: tomorrow.")
@cli_options(PlanOptions)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True, help="Output of a single-site plan.")
@click.option("--out", type=click.Path(), default=None,
              help="File (one site) or folder (--all) to write plans to.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="PNG plot of a single-site plan.")
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
@click.option("--events", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Demand-response events (JSON) for --all; see docs/vpp.md.")
@click.option("--no-feeders", is_flag=True,
              help="Ignore the shared feeder limits (--all plans every site on its own).")
@click.option("--plot-fleet", type=click.Path(dir_okay=False), default=None,
              help="PNG: fleet import stacked by site, PV and storage (--all).")
@click.option("--plot-events", type=click.Path(dir_okay=False), default=None,
              help="PNG: demand-response delivery against the request (--all --events).")
@click.option("--db", "database_url", default=None, envvar="DATABASE_URL",
              help="Database with the site's measurements (as `vpp serve`); a --site plan "
                   "takes the month-to-date peak and SOC at its start from them unless "
                   "given. Default: the service's.")
@click.option("--no-state", is_flag=True,
              help="Ignore stored measurements: plan from the options alone.")
@click.pass_context
def plan(ctx: click.Context, site_id: str | None, all_sites: bool, date: dt.datetime | None,
         fmt: str, out: str | None, plot: str | None, jobs: int, load_csv: str | None,
         pv_csv: str | None, weather: str | None, weather_label: str | None,
         events: str | None, no_feeders: bool, plot_fleet: str | None,
         plot_events: str | None, database_url: str | None, no_state: bool,
         **choices: Any) -> None:
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
    if pv_csv and weather:
        raise click.UsageError("give --pv-csv (a PV forecast) or --weather, not both")
    catalog = catalog_of(ctx)
    given = set(cli_values(PlanOptions, dict(choices)))
    options = plan_options(catalog, choices)
    start = day_of(date)
    from forecasts.weather import read_weather
    from vpp.timebase import TZ

    wx = read_weather(weather, TZ, weather_label) if weather else None
    if site_id:
        options, initial = _initial_state(catalog, site_id, start, options, given,
                                          database_url, no_state)
        _plan_one(catalog, site_id, start, options, fmt, out, plot, load_csv, pv_csv, wx,
                  initial)
        return
    from vpp.planning import usable_cores
    from vpp.problem import demand_rate
    from vpp.state import month_peak_warning

    if "month_peak_kw" not in given:
        forgot = [s.id for s in catalog.fleet.sites if month_peak_warning(
            start, options.month_peak_kw, s,
            demand_rate(s, catalog.tariffs.select(s.tariff_id, start)))]
        if forgot:
            click.echo(f"WARNING: month-to-date peak 0 kW on {start}, which is not the first "
                       f"day of its billing month: the plans of {len(forgot)} sites billed "
                       "on demand charge the whole month's demand charge to this day and "
                       "ignore the peak already set. --all plans take no stored state: plan "
                       "each site with --site (its stored state) or give --month-peak-kw.",
                       err=True)

    _plan_all(catalog, start, options, out, jobs or usable_cores(), wx, events,
              not no_feeders, plot_fleet, plot_events)


def _initial_state(catalog: Any, site_id: str, start: dt.date, options: PlanOptions,
                   given: set[str], database_url: str | None, no_state: bool,
                   ) -> tuple[PlanOptions, dict[str, Any]]:
    """The options with the stored initial state where none is given, and the plan's
    ``initial_state`` record; the loud warning when the month's peak is forgotten."""
    from vpp.cli import state_reader
    from vpp.problem import demand_rate
    from vpp.state import apply_initial_state, month_peak_warning
    from vpp.timebase import horizon

    site = catalog.fleet.site(site_id)
    reader = None if no_state else state_reader()
    state = reader(database_url, site, horizon(start)[0]) if reader else None
    options, initial = apply_initial_state(options, given, state, site, start)
    if "month_peak_kw" not in given and initial["month_peak_source"].startswith("default"):
        rate = demand_rate(site, catalog.tariffs.select(site.tariff_id, start,
                                                        options.tariff_version))
        warning = month_peak_warning(start, options.month_peak_kw, site, rate)
        if warning:
            click.echo(warning, err=True)
            initial["warning"] = warning
    return options, initial


def _plan_one(catalog: Any, site_id: str, start: dt.date, options: PlanOptions, fmt: str,
              out: str | None, plot: str | None, load_csv: str | None, pv_csv: str | None,
              weather: Any, initial: dict[str, Any] | None = None) -> None:
    from forecasts.load import read_meter_csv
    from vpp.plan_io import plan_csv, plan_json, plot_plan, site_table, status_line
    from vpp.planning import plan_site

    def series(path: str | None, column: str) -> Any:
        return None if path is None else read_meter_csv(path, column=column)

    p = plan_site(catalog, site_id, start, options, pv_kw=series(pv_csv, "pv_kw"),
                  load_kw=series(load_csv, "load_kw"), weather=weather)
    if initial is not None:
        p["initial_state"] = initial
        if "warning" in initial:
            p.setdefault("flags", []).append(initial["warning"])
    if p["status"] != "optimal":
        click.echo(f"warning: {site_id}: {status_line(p)}", err=True)
    text = {"json": plan_json, "csv": plan_csv, "table": site_table}[fmt](p)
    if out:
        Path(out).write_text(text if fmt != "table" else plan_json(p), "utf-8")
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text)
    if plot:
        plot_plan(p, plot)
        click.echo(f"wrote {plot}", err=True)


def _plan_all(catalog: Any, start: dt.date, options: PlanOptions, out: str | None,
              jobs: int, weather: Any = None, events: str | None = None,
              use_feeders: bool = True, plot_fleet: str | None = None,
              plot_events: str | None = None) -> None:
    from models import InfeasiblePlanError
    from vpp.coupled import plan_vpp
    from vpp.network import load_events
    from vpp.plan_io import format_table, plan_json, summary_table
    from vpp.vpp_io import events_text, feeder_text

    folder = Path(out) if out else None
    if folder:
        folder.mkdir(parents=True, exist_ok=True)
    total = len(catalog.fleet.sites)
    done = [0]
    failed: list[str] = []
    t0 = time.perf_counter()

    def progress(site_id: str, p: dict | None, err: Exception | None) -> None:
        done[0] += 1
        bar.advance()
        if p is None:
            failed.append(site_id)
            bar.note(f"[{done[0]:>2}/{total}] {site_id} FAILED: {err}")
            return
        flag = "" if p["status"] == "optimal" else f" {p['status'].upper()}"
        bar.note(f"[{done[0]:>2}/{total}] {site_id} {p['solver']['method']:<9} "
                 f"gap {p['solver']['optimality_gap']:.3%} {p['solver']['seconds']:.2f} s"
                 f"{flag}")

    from vpp.progress import progress_bar

    specs = load_events(events) if events else None
    if specs:  # every event checked against the horizon and the fleet before any solve
        from vpp.network import to_events
        from vpp.planning import horizon

        to_events(specs, horizon(start, options.days), catalog.fleet)
    feeders = catalog.feeder_caps if use_feeders else ()
    with progress_bar("planning", total, "plans") as bar:
        day = plan_vpp(catalog, start, options, feeders, specs, weather, jobs,
                       on_plan=progress)
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
        click.echo("\nShared network limits (peak net flow at the feeder head vs cap, kW):")
        click.echo(feeder_text(day.feeders))
        for rep in day.feeders:
            if rep["violated"]:
                click.echo(f"WARNING: {rep['feeder']}: the plans' net flow (import "
                           f"{rep['peak_net_import_kw']:,.0f} kW, export "
                           f"{rep['peak_net_export_kw']:,.0f} kW) breaks its cap; do not "
                           "dispatch these plans as they are", err=True)
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
        from vpp.vpp_io import plot_fleet_stack

        groups = [(f.name, list(f.site_ids)) for f in catalog.feeders.feeders] \
            if catalog.feeders else None
        plot_fleet_stack(plans, plot_fleet, groups)
        click.echo(f"wrote {plot_fleet}", err=True)
    if plot_events:
        if not day.events:
            raise click.UsageError("--plot-events needs --events")
        from vpp.vpp_io import plot_event_delivery

        plot_event_delivery(day.events, plot_events, day.baselines, day.plans)
        click.echo(f"wrote {plot_events}", err=True)
    limited = [sid for sid, p in plans.items() if p["status"] != "optimal"]
    if limited:
        click.echo(f"\n{len(limited)} plan(s) stopped by the time limit above the required "
                   f"gap (status time_limit): {', '.join(limited)}", err=True)
    if failed:
        click.echo(f"\n{len(failed)} site(s) failed: {', '.join(failed)}", err=True)
        sys.exit(1)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def audit(files: tuple[str, ...]) -> None:
    """Recheck plan JSON files: energy balance, SOC, limits, directions, costs, subsidy.

    Files that are not plans (a fleet run's summary, say) are named and skipped.
    """
    from models import InvalidInputError
    from vpp.audit import audit_plan, verdict
    from vpp.plan_io import read_plan

    bad = checked = 0
    for f in files:
        try:
            plan = read_plan(f)
            problems = audit_plan(plan)
        except (InvalidInputError, json.JSONDecodeError, UnicodeDecodeError, TypeError,
                KeyError) as exc:
            click.echo(f"{f}: skipped, not a plan document ({_reason(exc)})")
            continue
        checked += 1
        if problems:
            bad += 1
            click.echo(f"{f}: {len(problems)} problem(s)")
            for p in problems:
                click.echo(f"  - {p}")
        else:
            click.echo(f"{f}: {verdict(plan)}")
    click.echo(f"{checked} plan(s) checked, {bad} with problems, "
               f"{len(files) - checked} other file(s) skipped", err=True)
    if bad or not checked:
        sys.exit(1)


def _reason(exc: Exception) -> str:
    from models import InvalidInputError

    if isinstance(exc, InvalidInputError):
        return "; ".join(exc.problems)
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
        return "not JSON"
    return f"missing or malformed {exc}"


@click.command()
@day_option("Day to plan (default: tomorrow); ignored with --plans.")
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
    from models import InvalidInputError
    from vpp.coupled import plan_vpp
    from vpp.flexibility import fleet_envelope, plot_envelope
    from vpp.plan_io import format_table, read_plan
    from vpp.planning import usable_cores

    if abs(duration * 4 - round(duration * 4)) > 1e-9:
        raise InvalidInputError(f"--duration {duration:g} h: a whole number of 15-minute "
                                "intervals (0.25, 0.5, 0.75, ...)")
    catalog = catalog_of(ctx)
    if plans_dir:
        files = sorted(p for p in Path(plans_dir).glob("*.json")
                       if not p.name.startswith(("vpp_", "summary_"))
                       and not p.stem.endswith("_baseline"))
        plans, where = {}, {}
        for f in files:
            p = read_plan(f)
            if p["site_id"] in where:
                raise InvalidInputError(f"{plans_dir} holds two plans of {p['site_id']}: "
                                        f"{where[p['site_id']].name} and {f.name}; keep one "
                                        "day's plans per folder")
            plans[p["site_id"]], where[p["site_id"]] = p, f
        if not plans:
            raise InvalidInputError(f"no plan JSON files in {plans_dir}")
        starts = {p["start"] for p in plans.values()}
        if len(starts) > 1:
            raise InvalidInputError(f"plans in {plans_dir} start at different times: "
                                    f"{sorted(starts)}")
    else:
        plans = plan_vpp(catalog, day_of(date), PlanOptions(), catalog.feeder_caps, None,
                         None, jobs or usable_cores()).plans
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
