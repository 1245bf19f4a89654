"""``vpp simulate``: months of operation for the pilot fleet, with the evaluation report."""

from __future__ import annotations

import datetime as dt
import sys
import time

import click
import pandas as pd

from forecasts.synthetic import load_error_model
from forecasts.weather import Weather, read_weather
from vpp.cli_forecast import catalog_of
from vpp.finance import load_finance_inputs
from vpp.planning import usable_cores
from vpp.scenarios import sensitivity
from vpp.sim_report import write_report
from vpp.simulation import TARIFF_POLICIES, SimulationOptions, read_actuals, simulate


def _period_weather(path: str, opts: SimulationOptions) -> Weather:
    """A weather file for the whole period: typical-year files (EPW, TMY3) are read once per
    calendar year of the period and joined; a CSV is used as it is."""
    first = read_weather(path)
    if not path.lower().endswith(".epw") and "TMY" not in first.source.upper():
        return first
    index = opts.index()
    # one year more on each side: the first and last intervals need their neighbours
    years = range(index[0].year - 1, index[-1].year + 2)
    frames = [read_weather(path, year=y).frame for y in years]
    return Weather(pd.concat(frames).sort_index(), first.label,
                   f"{first.source} (repeated for {years[1]}-{years[-2]})")


@click.command()
@click.option("--sites", default="all", show_default=True,
              help="'all' or comma-separated site ids, e.g. CZ-MG-01,CZ-MG-05.")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default="2025-01-01",
              show_default=True, help="First simulated day.")
@click.option("--months", type=click.IntRange(1, 60), default=24, show_default=True,
              help="Calendar months to simulate.")
@click.option("--days", type=click.IntRange(1, 1826), default=None,
              help="Simulate this many days instead of whole months.")
@click.option("--tariff-policy", type=click.Choice(list(TARIFF_POLICIES)), default="in-force",
              show_default=True,
              help="Tariff version in force each day, or 426号 (2025) / 555号 (2023) throughout.")
@click.option("--subsidy-rate", type=click.FloatRange(0.0, 0.3), default=None,
              help="Subsidy [yuan/kWh discharged], 0-0.3. Default: the policy's 0.3.")
@click.option("--subsidy-blind", is_flag=True, help="Plans ignore the subsidy (still paid).")
@click.option("--foresight", type=click.Choice(["forecast", "perfect"]), default="forecast",
              show_default=True, help="Plan on forecasts, or on the actual PV and load.")
@click.option("--compare-perfect", is_flag=True,
              help="Also cost every day with perfect foresight from the same morning state "
                   "(never above the realised cost; about doubles solver time).")
@click.option("--weather", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Actual weather (EPW, TMY3 or CSV). Default: seeded synthetic series.")
@click.option("--actuals", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of measured <site>.csv (timestamp, load_kw and/or pv_kw; 15 min) "
                   "replacing the synthetic actual values for the sites that have one.")
@click.option("--errors", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Forecast-error / synthetic-weather model (TOML). Default: shipped file.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--gap", type=click.FloatRange(0.0, 0.05), default=5e-3, show_default=True,
              help="Certified relative optimality gap of every daily plan.")
@click.option("--emission-factor", type=click.FloatRange(0.0, 2.0), default=0.5703,
              show_default=True, help="Grid emission factor [tCO2/MWh].")
@click.option("--capex-yuan-per-wh", type=click.FloatRange(0.0, 5.0, min_open=True),
              default=None, help="Storage capex [yuan/Wh]; default the finance file's.")
@click.option("--life-years", type=click.IntRange(1, 30), default=None)
@click.option("--discount-rate", type=click.FloatRange(0.0, 0.5), default=None)
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
def simulate_cmd(ctx: click.Context, sites: str, start: dt.datetime, months: int,
                 days: int | None, tariff_policy: str, subsidy_rate: float | None,
                 subsidy_blind: bool, foresight: str, compare_perfect: bool,
                 weather: str | None, actuals: str | None, errors: str | None,
                 seed: int, gap: float, emission_factor: float, capex_yuan_per_wh: float | None,
                 life_years: int | None, discount_rate: float | None, sens: bool, jobs: int,
                 executor: str, address: str | None, out: str) -> None:
    """Simulate months of operation: a day-ahead plan every day, realised with actual PV and
    load, monthly bills, subsidy on realised discharge; then the pilot evaluation report
    (report.md/.html, CSVs, charts) in --out.

    \b
    Example:
      vpp simulate --sites all --start 2025-01-01 --months 24 --out sim-2025
    """
    catalog = catalog_of(ctx)
    ids = None if sites.strip().lower() == "all" else [s.strip() for s in sites.split(",")]
    opts = SimulationOptions(
        start=start.date(), months=months, days=days, tariff_policy=tariff_policy,
        subsidy_rate_yuan_per_kwh=subsidy_rate, subsidy_aware=not subsidy_blind,
        foresight=foresight, compare_perfect=compare_perfect, seed=seed, mip_rel_gap=gap,
        emission_factor_t_per_mwh=emission_factor)
    opts.validate()
    finance = load_finance_inputs(capex_yuan_per_wh=capex_yuan_per_wh, life_years=life_years,
                                  discount_rate=discount_rate)
    err_model = load_error_model(errors) if errors else load_error_model()
    wx = _period_weather(weather, opts) if weather else None
    workers = jobs or usable_cores()

    def progress(done: int, total: int, elapsed: float) -> None:
        eta = elapsed / done * (total - done) if done else float("nan")
        click.echo(f"\r{done}/{total} site-months, {elapsed:5.0f} s elapsed, ETA {eta:4.0f} s",
                   err=True, nl=False)

    t0 = time.perf_counter()
    measured = read_actuals(actuals, ids or [s.id for s in catalog.fleet.sites]) \
        if actuals else None
    result = simulate(catalog, opts, ids, errors=err_model, weather=wx, out=out, jobs=workers,
                      executor=executor, address=address, on_progress=progress,
                      actuals=measured)
    click.echo("", err=True)
    for sid, msg in result.failures.items():
        click.echo(f"{sid}: FAILED: {msg}", err=True)
    table = None
    if sens:
        table = sensitivity(catalog, opts, ids, [0.0, 0.1, 0.2, 0.3], ["2025", "2023"], finance,
                            out=f"{out}/sensitivity", errors=err_model, weather=wx,
                            jobs=workers, executor=executor, address=address,
                            on_scenario=lambda r, p, _res: click.echo(
                                f"sensitivity: rate {r:g}, tariff {p} done", err=True))
    files = write_report(result, catalog, out, finance, table)
    tot = result.fleet_totals()
    click.echo(f"simulated {len(result.timing)} sites in {time.perf_counter() - t0:.1f} s: "
               f"subsidy {tot['subsidy_yuan']:,.0f} yuan, savings {tot['savings_yuan']:,.0f} "
               f"yuan, discharge {tot['discharge_kwh']:,.0f} kWh, CO2 avoided "
               f"{tot['co2_avoided_t']:,.0f} t")
    click.echo(f"report: {files['report.md']} (and .html, months.csv, sites.csv, days.csv)")
    if result.failures:
        sys.exit(1)
