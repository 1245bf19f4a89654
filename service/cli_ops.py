"""``vpp measurements import``, ``vpp state``, ``vpp ledger`` and ``vpp operate``: live
operation from the command line, on the service's database (``--db``, ``DATABASE_URL`` or
the SQLite file ``vpp serve`` uses by default). Loaded only when one of them runs
(``service/cli.py`` lists them in the ``vpp`` group), so ``vpp --help`` imports no database
library.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from typing import Any

import click

from service.cli import DB_OPTION, _sessions, _settings, missing_sqlite_file
from vpp.cli import catalog_of
from vpp.options import OperateOptions, cli_name, cli_options, cli_values, parse

NOW_OPTION = click.option(
    "--now", "now_text", default=None, metavar="ISO",
    help="The clock, ISO 8601 with offset (replaying stored data). Default: now.")


def _now(text: str | None) -> dt.datetime:
    if text is None:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)  # shown in whole seconds
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not ISO 8601", param_hint="--now") from None
    if t.tzinfo is None:
        raise click.BadParameter("give the offset, e.g. 2026-07-15T10:05:00+08:00",
                                 param_hint="--now")
    return t


def _site(catalog: Any, site_id: str) -> Any:
    return catalog.fleet.site(site_id)  # InvalidInputError names the known ids


@click.group()
def measurements() -> None:
    """Site measurements in the service's database (see docs/operations.md)."""


@measurements.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--site", "site_id", required=True, help="Site id, e.g. CZ-MG-01.")
@click.option("--interval-minutes", type=click.Choice(["1", "3", "5", "15"]), default="15",
              show_default=True, help="Resolution of the rows [min].")
@DB_OPTION
@NOW_OPTION
@click.pass_context
def import_cmd(ctx: click.Context, file: str, site_id: str, interval_minutes: str,
               database_url: str | None, now_text: str | None) -> None:
    """Validate FILE (CSV: timestamp and any measurement columns) and store it: every bad
    row is named and nothing is stored; rows already stored are updated (by timestamp)."""
    from service.operations import ingest
    from vpp.measurements import MAX_FILE_ROWS, read_csv_rows

    catalog = catalog_of(ctx)
    site = _site(catalog, site_id)
    rows = read_csv_rows(file)
    new_file = missing_sqlite_file(_settings(database_url).database_url)
    with _sessions(database_url)() as db:
        batch = ingest(db, site, rows, int(interval_minutes), _now(now_text),
                       max_rows=MAX_FILE_ROWS, text_numbers=True)
    if new_file:  # a first import, or a mistyped --db: either way, say so
        click.echo(f"note: created a new database file {new_file}", err=True)
    s = batch.summary()
    click.echo(f"{site_id}: stored {s['rows']} rows from {s['first']} to {s['last']} "
               f"({', '.join(s['fields'])}) in {_settings(database_url).database_url}")
    if s["gaps"]:
        click.echo(f"gaps (reported, not rejected): {s['missing_intervals']} missing "
                   f"{interval_minutes}-minute steps", err=True)
        for g in s["gaps"]:
            click.echo(f"  {g['start']} .. {g['end']}: {g['missing_intervals']}", err=True)


@click.command()
@click.option("--site", "site_id", required=True, help="Site id, e.g. CZ-MG-01.")
@click.option("--month", "month_text", default=None, metavar="YYYY-MM",
              help="A billing month instead of the month of --now: a closed month is read "
                   "to its end (its final peak and charges).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@DB_OPTION
@NOW_OPTION
@click.pass_context
def state(ctx: click.Context, site_id: str, month_text: str | None, fmt: str,
          database_url: str | None, now_text: str | None) -> None:
    """The site's state from its stored measurements: SOC now, month-to-date peak [kW] and
    its demand charge, energy cost, discharge and subsidy this month, freshness, gaps.

    \b
    vpp state --site CZ-MG-01
    vpp state --site CZ-MG-01 --month 2026-11    # last month's final peak and charges
    """
    from service.operations import state_of

    catalog = catalog_of(ctx)
    _site(catalog, site_id)
    first = _month(month_text, "--month")
    with _sessions(database_url, existing=True)() as db:
        st = state_of(db, catalog, site_id, _now(now_text), first).to_dict()
    if fmt == "json":
        click.echo(json.dumps(st, indent=1, ensure_ascii=False))
        return
    click.echo(state_table(st))


def _num(v: Any, fmt: str = ",.3f") -> str:
    return "-" if v is None else format(v, fmt)


def state_table(st: dict[str, Any]) -> str:
    """The state as text, one quantity a line with its unit."""
    if not st["measured"]:
        return (f"{st['site_id']} at {st['now']}: no measurements stored (vpp measurements "
                "import FILE --site ID, or POST /v1/sites/{id}/measurements)")
    age = st["age_s"]
    lines = [
        f"{st['site_id']} at {st['now']} (billing month {st['month']}, tariff "
        f"{st['tariff_version']})",
        f"  SOC now                     {_num(st['soc_kwh'])} kWh"
        + (f" ({st['soc_frac']:.1%}) at {st['soc_measured_at']}" if st["soc_kwh"] is not None
           else " (none measured)"),
        f"  month-to-date peak          {_num(st['month_peak_kw'])} kW at "
        f"{st['month_peak_at'] or '-'}",
        f"  demand charge implied       {_num(st['demand_charge_yuan'])} yuan "
        f"({st['billing_basis']} billing, {st['demand_rate_yuan_per_kw_month']:g} "
        "yuan/kW·month)",
        f"  energy cost so far          {_num(st['energy_cost_yuan'])} yuan "
        f"({_num(st['import_kwh'])} kWh imported)",
        f"  export revenue so far       {_num(st['export_revenue_yuan'])} yuan "
        f"({_num(st['export_kwh'])} kWh exported)",
        f"  battery discharge           {_num(st['discharge_kwh'])} kWh (charge "
        f"{_num(st['charge_kwh'])} kWh)",
        f"  subsidy it would earn       {_num(st['subsidy_yuan'])} yuan (rule "
        f"{st['subsidy_rule']}, " + (f"{st['subsidy_rate_yuan_per_kwh']:g} yuan/kWh)"
                                     if st["subsidy_in_window"] else
                                     "outside the paid window)"),
        f"  data until                  {st['data_until']} (age "
        f"{_num(None if age is None else age / 60, ',.1f')} min)",
        f"  intervals measured          {st['intervals_measured']} of "
        f"{st['intervals_so_far']} this month ({st['gap_intervals']} missing)",
    ]
    if st["anti_backflow_export_kwh"] > 0:
        lines.append(f"  WARNING: {_num(st['anti_backflow_export_kwh'])} kWh exported by an "
                     "anti-backflow site (export limit 0 kW): check its protection; not paid")
    for g in st["gaps"][:10]:
        lines.append(f"    gap {g['start']} .. {g['end']} ({g['intervals']} interval"
                     f"{'' if g['intervals'] == 1 else 's'})")
    if len(st["gaps"]) > 10 or st["gaps_truncated"]:
        lines.append("    ... (more gaps: --format json)")
    return "\n".join(lines)


def _month(text: str | None, option: str) -> dt.date | None:
    from vpp.ledger import parse_month

    if text is None:
        return None
    try:
        return parse_month(text)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r}: {exc}", param_hint=option) from None


@click.command()
@click.option("--site", "site_id", required=True, help="Site id, e.g. CZ-MG-01.")
@click.option("--from", "from_text", default=None, metavar="YYYY-MM",
              help="First month. Default: the month of the station's grid connection.")
@click.option("--to", "to_text", default=None, metavar="YYYY-MM",
              help="Last month. Default: the month of --now.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
@DB_OPTION
@NOW_OPTION
@click.pass_context
def ledger(ctx: click.Context, site_id: str, from_text: str | None, to_text: str | None,
           fmt: str, database_url: str | None, now_text: str | None) -> None:
    """The site's storage-subsidy ledger from its stored measurements: per calendar month
    with data, whether it lies in the paid window, metered and counted discharge [kWh], rate
    [yuan/kWh], subsidy [yuan] and coverage, with the totals in the window.

    \b
    vpp ledger --site CZ-MG-04
    vpp ledger --site CZ-MG-04 --from 2026-01 --format csv > ledger.csv
    """
    from service.operations import ledger_of

    first, last = _month(from_text, "--from"), _month(to_text, "--to")
    if first is not None and last is not None and first > last:
        raise click.BadParameter(f"{from_text} is after --to {to_text}", param_hint="--from")
    catalog = catalog_of(ctx)
    _site(catalog, site_id)
    with _sessions(database_url, existing=True)() as db:
        led = ledger_of(db, catalog, site_id, _now(now_text), first, last).to_dict()
    if fmt == "json":
        click.echo(json.dumps(led, indent=1, ensure_ascii=False))
    elif fmt == "csv":
        click.echo(ledger_csv(led), nl=False)
    else:
        click.echo(ledger_table(led))


#: The ledger's columns: (key, heading with unit, format).
LEDGER_COLUMNS = (
    ("month", "month", "s"), ("in_window", "in window", "s"),
    ("discharge_kwh", "discharge [kWh]", ",.1f"),
    ("counted_discharge_kwh", "counted [kWh]", ",.1f"),
    ("rate_yuan_per_kwh", "rate [yuan/kWh]", ".2f"), ("subsidy_yuan", "subsidy [yuan]", ",.2f"),
    ("intervals_measured", "measured [15 min]", "d"),
    ("intervals_in_month", "in month [15 min]", "d"), ("tariff_version", "tariff", "s"),
)


def ledger_csv(led: dict[str, Any]) -> str:
    """The ledger's months as CSV, one month a row, units in the column names."""
    import csv
    import io

    keys = ["month", "in_window", "complete", "discharge_kwh", "counted_discharge_kwh",
            "rate_yuan_per_kwh", "subsidy_yuan", "intervals_measured", "intervals_in_month",
            "coverage_frac", "tariff_version", "counting_rule"]
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=["site_id", *keys], lineterminator="\n")
    w.writeheader()
    for m in led["months"]:
        w.writerow({"site_id": led["site_id"], **{k: m[k] for k in keys}})
    return out.getvalue()


def ledger_table(led: dict[str, Any]) -> str:
    """The ledger as text: the window, one month a line with units, the totals."""
    window = (f"paid {led['window_first_day']} to {led['window_last_day']}" if led["eligible"]
              else "not eligible (rated power below the policy's minimum)")
    lines = [f"{led['site_id']} at {led['now']}: subsidy {led['policy_version']}, rule "
             f"{led['counting_rule']}, {window}"]
    if not led["months"]:
        lines.append("  no measurements stored in these months (vpp measurements import FILE "
                     "--site ID, or POST /v1/sites/{id}/measurements)")
        return "\n".join(lines)
    cells = [[h for _, h, _ in LEDGER_COLUMNS]]
    for m in led["months"]:
        row = []
        for key, _, f in LEDGER_COLUMNS:
            v = m[key]
            row.append(("yes" if v else "no") if key == "in_window" else format(v, f))
        if not m["complete"]:
            row[0] += "*"
        cells.append(row)
    widths = [max(len(r[i]) for r in cells) for i in range(len(LEDGER_COLUMNS))]
    for r in cells:
        lines.append(("  " + "  ".join(
            c.ljust(w) if LEDGER_COLUMNS[i][2] == "s" else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True)))).rstrip())
    lines.append(f"  in the window: discharge {led['discharge_in_window_kwh']:,.1f} kWh, "
                 f"counted {led['counted_discharge_in_window_kwh']:,.1f} kWh, subsidy "
                 f"{led['subsidy_in_window_yuan']:,.2f} yuan; {led['window_months_left']} "
                 "month(s) of the window left")
    if any(not m["complete"] for m in led["months"]):
        lines.append("  * month still running: counted up to now")
    return "\n".join(lines)


@click.command()
@click.option("--site", "site_id", help="Site id, e.g. CZ-MG-01.")
@click.option("--all", "all_sites", is_flag=True,
              help="Every site with a battery in service and fresh measurements.")
@click.option("--loop", is_flag=True, help="Step on the cadence until interrupted.")
@cli_options(OperateOptions)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@DB_OPTION
@NOW_OPTION
@click.pass_context
def operate(ctx: click.Context, site_id: str | None, all_sites: bool, loop: bool, fmt: str,
            database_url: str | None, now_text: str | None, **choices: Any) -> None:
    """One control step now from the stored measurements and state: re-plan the next 24 h
    (nowcast, peak margin, certified re-plan), store the 15-minute battery set-points, the
    defended peak and the gap, and print them. --loop repeats on the cadence (APScheduler),
    taking each site's lease like the service's scheduler.

    \b
    vpp operate --site CZ-MG-01
    vpp operate --all --loop --cadence 15
    """
    from service.operations import add_setpoints, month_rows
    from service.scheduler import due_sites, run_step, slot_of, trigger
    from service.store import catalog_with_sites
    from vpp.operate import Operator

    if bool(site_id) == all_sites:
        raise click.UsageError("give exactly one of --site ID or --all")
    if loop and now_text:
        raise click.UsageError("--now replays one step; --loop runs on the clock")
    options = parse(OperateOptions, cli_values(OperateOptions, choices),
                    "invalid operate options", names=lambda f: cli_name(f, OperateOptions))
    base = catalog_of(ctx)
    sessions = _sessions(database_url, existing=True)
    with sessions() as db:
        catalog = catalog_with_sites(db, base)
    if site_id:
        _site(catalog, site_id)
    operator = Operator(catalog, options)

    def sites(db: Any, now: dt.datetime) -> list[str]:
        if site_id:
            return [site_id]
        return due_sites(db, catalog, now, options.max_age_minutes)

    if not loop:
        now = _now(now_text)
        with sessions() as db:
            ids = sites(db, now)
            if not ids:
                click.echo("no site with a battery in service has measurements newer than "
                           f"{options.max_age_minutes:g} min", err=True)
            for sid in ids:
                step = operator.step(sid, month_rows(db, sid, now), now)
                add_setpoints(db, step, "cli")
                db.commit()
                _show(step.to_dict(), fmt)
        return

    from apscheduler.schedulers.blocking import BlockingScheduler

    from service.procs import owner_id

    owner = f"cli:{owner_id()}"

    def tick() -> None:
        now = dt.datetime.now(dt.UTC)
        slot = slot_of(now, options.cadence_minutes)
        with sessions() as db:
            ids = sites(db, now)
        for sid in ids:
            try:
                doc = run_step(sessions, operator, sid, now, slot, owner,
                               options.cadence_minutes * 60.0, "cli")
            except Exception as exc:  # keep operating the other sites
                click.echo(f"{sid}: step failed: {type(exc).__name__}: {exc}", err=True)
                continue
            if doc is None:
                click.echo(f"{sid}: taken by another process for {slot.isoformat()}", err=True)
            else:
                _show(doc, fmt)

    scheduler = BlockingScheduler(timezone="Asia/Shanghai")
    scheduler.add_job(tick, trigger(options.cadence_minutes, 0.0), max_instances=1,
                      coalesce=True, next_run_time=dt.datetime.now(dt.UTC))
    click.echo(f"operating every {options.cadence_minutes} min; Ctrl-C stops", err=True)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()


def _show(doc: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(doc, ensure_ascii=False))
        return
    ini = doc["initial"]
    click.echo(f"{doc['site_id']} decided {doc['decided_at']}: set-point now "
               f"{doc['setpoint_kw'][0]:,.1f} kW (discharge +), defended peak "
               f"{doc['defended_peak_kw']:,.1f} kW, gap {doc['optimality_gap']:.3%} "
               f"({doc['status']}, {doc['solve_seconds']:.2f} s)")
    click.echo(f"  from SOC {_num(ini['soc_kwh'], ',.1f')} kWh ({ini['soc_source']}), month "
               f"peak {ini['month_peak_kw']:,.1f} kW ({ini['month_peak_source']})")
    rise = doc["defended_peak_kw"] - (ini["month_peak_kw"] or 0.0)
    if ini["month_peak_kw"] is not None and rise > 0.05:
        click.echo(f"  the re-plan lets the month's peak rise by {rise:,.1f} kW (to the "
                   "defended peak): on the forecast load, the cheapest plan within its gap")
    for note in doc["notes"]:
        click.echo(f"  note: {note}")
    click.echo(hourly_table(doc))


def hourly_table(doc: dict[str, Any], hours: int = 24) -> str:
    """The step's horizon by hour: mean set-point (discharge +) and planned import [kW],
    SOC at the end of the hour [kWh] (the JSON has every 15-minute interval)."""
    rows = ["  hour from          set-point [kW]   import [kW]   SOC end [kWh]"]
    times, n = doc["timestamps"], len(doc["timestamps"])
    soc = doc.get("soc_kwh") or [None] * n
    for h in range(min(hours, n // 4)):
        sl = slice(4 * h, 4 * h + 4)
        sp = sum(doc["setpoint_kw"][sl]) / 4.0
        imp = sum(doc["grid_import_kw"][sl]) / 4.0
        rows.append(f"  {times[4 * h][:16]}   {sp:>14,.1f}   {imp:>11,.1f}   "
                    f"{_num(soc[4 * h + 3], ',.1f'):>13}")
    return "\n".join(rows)


def plan_state(database_url: str | None, site: Any, plan_start: Any) -> Any:
    """The measured initial state of a plan of ``site`` from ``plan_start`` (:func:`vpp.
    state.plan_initial_state`) for ``vpp plan``; None without a database or measurements.
    Creates no database: a missing SQLite file means no state."""
    from sqlalchemy import inspect

    from service.db import make_engine, session_factory
    from service.operations import initial_state

    url = _settings(database_url).database_url
    if missing_sqlite_file(url):
        return None
    engine = make_engine(url)
    try:
        if not inspect(engine).has_table("measurements"):
            return None
        with session_factory(engine)() as db:
            return initial_state(db, site, plan_start)
    finally:
        engine.dispose()
