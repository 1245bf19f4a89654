"""``vpp simulate``: months of operation for the pilot fleet, with the evaluation report."""

from __future__ import annotations

import datetime as dt
import sys
import time
from typing import Any

import click

from vpp.cli import catalog_of
from vpp.options import (
    FinanceChoices,
    SimulationOptions,
    cli_name,
    cli_options,
    cli_values,
    parse,
    with_policy,
)


def _period_weather(path: str, opts: SimulationOptions) -> Any:
    """A weather file for the whole period: typical-year files (EPW, TMY3) are read once per
    calendar year of the period and joined; a CSV is used as it is."""
    import pandas as pd

    from forecasts.weather import Weather, read_weather
    from vpp.simulation import period

    first = read_weather(path)
    if not path.lower().endswith(".epw") and "TMY" not in first.source.upper():
        return first
    index = period(opts)
    # one year more on each side: the first and last intervals need their neighbours
    years = range(index[0].year - 1, index[-1].year + 2)
    frames = [read_weather(path, year=y).frame for y in years]
    return Weather(pd.concat(frames).sort_index(), first.label,
                   f"{first.source} (repeated for {years[1]}-{years[-2]})")


@click.command()
@click.option("--sites", default="all", show_default=True,
              help="'all' or comma-separated site ids, e.g. CZ-MG-01,CZ-MG-05.")
@click.option("--start", default="2025-01-01", show_default=True,
              help="First simulated day (YYYY-MM-DD).")
@cli_options(SimulationOptions, exclude=("start",))
@cli_options(FinanceChoices)
@click.option("--weather", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Actual weather (EPW, TMY3 or CSV). Default: seeded synthetic series.")
@click.option("--actuals", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of measured <site>.csv (timestamp, load_kw and/or pv_kw; 15 min) "
                   "replacing the synthetic actual values for the sites that have one.")
@click.option("--errors", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Forecast-error / synthetic-weather model (TOML). Default: shipped file.")
@click.option("--sensitivity", "sens", is_flag=True,
              help="Also run subsidy 0/0.1/0.2/0.3 x tariff 2025/2023 (8 more runs).")
@click.option("--jobs", type=click.IntRange(0, 256), default=0, show_default=True,
              help="Workers (0 = one per core).")
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local",
              show_default=True, help="Local process pool or Dask distributed.")
@click.option("--address", default=None,
              help="Dask scheduler address (tcp://host:8786); default a local cluster.")
@click.option("--out", type=click.Path(file_okay=False), default="simulation",
              show_default=True,
              help="Output folder; an interrupted run in it resumes where it stopped.")
@click.pass_context
def simulate_cmd(ctx: click.Context, sites: str, start: str, weather: str | None,
                 actuals: str | None, errors: str | None, sens: bool, jobs: int,
                 executor: str, address: str | None, out: str, **choices: Any) -> None:
    """Simulate months of operation: the closed-loop controller re-planning through each
    day from the measured state (--control mpc, the default) or one day-ahead plan a day
    (--control day-ahead), realised with actual PV and load; monthly bills, subsidy on
    realised discharge; then the pilot evaluation report (report.md/.html, CSVs, charts) in
    --out.

    \b
    Example:
      vpp simulate --sites all --start 2025-01-01 --months 24 --out sim-2025
      vpp simulate --sites CZ-MG-01 --months 12 --foresight perfect --out perfect
    """
    from forecasts.synthetic import load_error_model
    from vpp.finance import load_finance_inputs
    from vpp.planning import usable_cores
    from vpp.scenarios import sensitivity, subsidy_rates, tariff_policies
    from vpp.sim_report import write_report
    from vpp.simulation import check_simulation, read_actuals, simulate

    catalog = catalog_of(ctx)
    ids = None if sites.strip().lower() == "all" else [s.strip() for s in sites.split(",")]
    values = {"start": start, **cli_values(SimulationOptions, choices)}
    opts = parse(with_policy(SimulationOptions, catalog.policy.max_rate_yuan_per_kwh), values,
                 "invalid simulation options",
                 names=lambda f: cli_name(f, SimulationOptions))
    fin = parse(FinanceChoices, cli_values(FinanceChoices, choices), "invalid finance options",
                names=lambda f: cli_name(f, FinanceChoices))
    finance = load_finance_inputs(**fin.model_dump(exclude_none=True))
    err_model = load_error_model(errors) if errors else load_error_model()
    wx = _period_weather(weather, opts) if weather else None
    workers = jobs or usable_cores()

    from vpp.progress import progress_bar

    t0 = time.perf_counter()
    check_simulation(catalog, opts, ids)  # bad sites or tariff named before any progress
    measured = read_actuals(actuals, ids or [s.id for s in catalog.fleet.sites]) \
        if actuals else None
    try:
        with progress_bar("simulating", None, "site-months") as bar:
            result = simulate(catalog, opts, ids, errors=err_model, weather=wx, out=out,
                              jobs=workers, executor=executor, address=address,
                              on_progress=lambda done, total, _s: bar.update(done, total),
                              actuals=measured)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: the completed months are kept in {out}; run the same "
                   "command again to resume after them", err=True)
        sys.exit(130)
    for sid, msg in result.failures.items():
        click.echo(f"{sid}: FAILED: {msg}", err=True)
    for note in _storage_notes(catalog, opts, ids):
        click.echo(note, err=True)
    table = None
    if sens:
        table = sensitivity(catalog, opts, ids, subsidy_rates(catalog),
                            tariff_policies(catalog, ids), finance,
                            out=f"{out}/sensitivity", errors=err_model, weather=wx,
                            jobs=workers, executor=executor, address=address,
                            on_scenario=lambda r, p, _res: click.echo(
                                f"sensitivity: rate {r:g}, tariff {p} done", err=True))
    files = write_report(result, catalog, out, finance, table)
    from vpp.finance import annualisation_warning
    from vpp.sim_report import finance_span

    if len(result.months):
        warning = annualisation_warning(*finance_span(result, catalog))
        if warning:
            click.echo(warning, err=True)
    tot = result.fleet_totals()
    click.echo(f"simulated {len(result.timing)} sites in {time.perf_counter() - t0:.1f} s: "
               f"subsidy {tot['subsidy_yuan']:,.0f} yuan, savings {tot['savings_yuan']:,.0f} "
               f"yuan, discharge {tot['discharge_kwh']:,.0f} kWh, CO2 avoided "
               f"{tot['co2_avoided_t']:,.0f} t")
    click.echo(f"report: {files['report.md']} (and .html, months.csv, sites.csv, days.csv)")
    if result.failures:
        sys.exit(1)


def _storage_notes(catalog: Any, opts: SimulationOptions, ids: list[str] | None) -> list[str]:
    """A note per simulated site whose battery is connected to the grid after the period
    starts: the days before run without it (no discharge, no savings from it)."""
    from vpp.problem import storage_in_service
    from vpp.simulation import period

    days = period(opts).normalize().unique()
    first, last = days[0].date(), days[-1].date()
    notes = []
    for site in ((catalog.fleet.site(i) for i in dict.fromkeys(ids)) if ids
                 else catalog.fleet.sites):
        s = site.storage
        if s is None or storage_in_service(site, first):
            continue
        without = (min(s.grid_connection_date, last + dt.timedelta(days=1)) - first).days
        notes.append(f"note: {site.id}'s battery is connected to the grid on "
                     f"{s.grid_connection_date}: {without} of the {len(days)} simulated days "
                     f"run without it (no discharge, no savings from it); start at or after "
                     f"{s.grid_connection_date} (--start) to simulate it")
    return notes
