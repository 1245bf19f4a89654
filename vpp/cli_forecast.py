"""``vpp pv …`` and ``vpp load …``: forecasts, calibration and backtests from the command line.

pvlib, scipy, pvanalytics and matplotlib are imported inside the commands that need them, so
that ``vpp --help`` and the other commands start fast.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import pandas as pd

from models import InvalidInputError
from vpp.cli import catalog_of

if TYPE_CHECKING:
    from forecasts.pv_forecast import PVModel
    from forecasts.weather import Weather

LABELS = click.Choice(["start", "end", "instant"])
#: Longest forecast span, for --days and for --start..--end alike [days] (two years).
MAX_DAYS = 731
AMBIGUOUS = click.Choice(["raise", "earlier", "later", "infer", "drop"])
NONEXISTENT = click.Choice(["raise", "shift_forward", "shift_backward", "drop"])


def local_time_options(f: Any) -> Any:
    """--ambiguous / --nonexistent: how local times without an offset that occur twice or not
    at all (daylight saving time) are read, in every CSV the command reads."""
    f = click.option("--nonexistent", type=NONEXISTENT, default="raise", show_default=True,
                     help="Local times skipped when clocks go forward: raise an error, move "
                          "them forward/backward, or drop the rows.")(f)
    return click.option("--ambiguous", type=AMBIGUOUS, default="raise", show_default=True,
                        help="Local times repeated when clocks go back: raise an error, take "
                             "the earlier (DST) or later occurrence, infer from the row "
                             "order, or drop the rows.")(f)


def measured_options(f: Any) -> Any:
    """The measured-power CSV and how to read it."""
    for opt in reversed([
        click.option("--measured", type=click.Path(exists=True, dir_okay=False),
                     required=True, help="CSV with a time column (timestamp, time, "
                                         "datetime, ...) and measured AC power."),
        click.option("--column", default="ac_power_kw", show_default=True,
                     help="Power column of --measured."),
        click.option("--unit", type=click.Choice(["kW", "W"]), default="kW",
                     show_default=True),
        click.option("--measured-label", type=LABELS, default="start", show_default=True,
                     help="A power row is the average over the interval starting or ending at "
                          "its timestamp, or an instant sample."),
    ]):
        f = opt(f)
    return f


def _model(ctx: click.Context, site_id: str | None, system: str | None) -> PVModel:
    from vpp.pv_inputs import load_system_model, site_pv_model

    if bool(site_id) == bool(system):
        raise click.UsageError("give exactly one of --site ID or --system FILE")
    if system:
        return load_system_model(system)
    catalog = catalog_of(ctx)
    site = catalog.fleet.site(site_id)
    if not site.pv_arrays:
        raise InvalidInputError(f"site {site_id} has no PV arrays")
    return site_pv_model(site, catalog.calibrations)


def _weather(path: str | None, tz: str, label: str | None, year: int | None,
             ambiguous: str = "raise", nonexistent: str = "raise") -> Weather | None:
    from forecasts.weather import read_weather

    return read_weather(path, tz, label, year, ambiguous, nonexistent) if path else None


def _span(weather: Weather | None, start: dt.datetime | None, end: dt.datetime | None,
          days: int | None, tz: str) -> pd.DatetimeIndex:
    """15-minute interval starts from --start (default: the weather's first whole day, else
    tomorrow) to --end (inclusive), or for --days (never both), or else to the weather's
    last whole day (included when the rows reach its midnight), or for one day. At most
    :data:`MAX_DAYS` days."""
    from vpp.options import DATE_MAX, DATE_MIN

    for name, day in (("--start", start), ("--end", end)):
        if day is not None and not DATE_MIN <= day.date() <= DATE_MAX:
            raise InvalidInputError(f"{name} {day.date().isoformat()}: dates from {DATE_MIN} to "
                                    f"{DATE_MAX} are supported")
    if end is not None and days is not None:
        raise InvalidInputError(f"--end {end:%Y-%m-%d} and --days {days} both given: the span "
                                "is --start..--end (inclusive) or --days from --start, not both")
    if start is None and weather is not None:
        from forecasts.weather import coverage

        first, last = coverage(weather)
        s = first.tz_convert(tz).ceil("D")
        e = last.tz_convert(tz).floor("D")
        if days:
            e = _midnight(s.tz_localize(None) + pd.Timedelta(days=days), tz)
        if end is not None:
            e = _midnight(pd.Timestamp(end) + pd.Timedelta(days=1), tz)
        if e <= s:
            raise InvalidInputError(
                f"{weather.source} does not cover a whole day in {tz}" if end is None else
                f"--end {end:%Y-%m-%d} is before the weather's first whole day {s:%Y-%m-%d}")
    else:
        s = (_midnight(pd.Timestamp(start), tz) if start else
             (pd.Timestamp.now(tz=tz) + pd.Timedelta(days=1)).normalize())
        if end is not None:
            e = _midnight(pd.Timestamp(end) + pd.Timedelta(days=1), tz)
        else:
            e = _midnight(s.tz_localize(None) + pd.Timedelta(days=days or 1), tz)
        if e <= s:
            raise InvalidInputError(
                f"--end {end:%Y-%m-%d} is before --start {s:%Y-%m-%d}"
                + ("" if start else " (without --start: tomorrow)"))
    n_days = (e.tz_localize(None) - s.tz_localize(None)).days  # calendar days
    if n_days > MAX_DAYS:
        raise InvalidInputError(f"the forecast spans {n_days} days ({s:%Y-%m-%d}.."
                                f"{e - pd.Timedelta(days=1):%Y-%m-%d}); at most {MAX_DAYS}")
    return pd.date_range(s, e, freq="15min", inclusive="left")


def _midnight(day: pd.Timestamp, tz: str) -> pd.Timestamp:
    """Local midnight starting ``day`` (naive) in ``tz``: a calendar day is 23 or 25 hours
    where clocks change."""
    return day.normalize().tz_localize(tz, ambiguous=True, nonexistent="shift_forward")


def _emit(csv_text: str, out: str | None) -> None:
    """Write the CSV to ``out`` (and say so on stderr) or to stdout."""
    if out:
        try:
            Path(out).write_text(csv_text, "utf-8")
        except OSError as exc:
            raise InvalidInputError(f"--out {out}: cannot write the file ({exc.strerror})"
                                    ) from None
        click.echo(f"wrote {out} ({csv_text.count(chr(10)) - 1} intervals, kW)", err=True)
    else:
        click.echo(csv_text, nl=False)


def _metrics_table(rows: dict[str, Any]) -> str:
    df = pd.DataFrame(rows).T
    cols = {"nmae": "15-min nMAE", "nrmse": "15-min nRMSE", "daily_nmae": "daily nMAE",
            "daily_nrmse": "daily nRMSE", "daily_bias": "daily bias"}
    out = df[list(cols)].astype(float).map(lambda v: f"{v:+.2%}" if v < 0 else f"{v:.2%}")
    out.columns = list(cols.values())
    out["intervals"] = df["intervals"].astype(int)
    out["days"] = df["days"].astype(int)
    return out.to_string()


def _write_json(path: str | Path, doc: dict) -> None:
    Path(path).write_text(json.dumps(doc, indent=1, ensure_ascii=False), "utf-8")


@click.group()
def pv() -> None:
    """PV forecasts (P10/P50/P90, 15 min) with pvlib, calibration and backtest."""


@pv.command("forecast")
@click.option("--site", "site_id", default=None, help="Fleet site id, e.g. CZ-MG-01.")
@click.option("--system", type=click.Path(dir_okay=False), default=None,
              help="System JSON for a PV system not in the fleet (lat, lon, altitude, arrays;"
                   " a calibrated one from `vpp pv calibrate --out` carries its bands).")
@click.option("--weather", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Weather file: CSV with named columns, EPW or TMY3. Default: climatology.")
@click.option("--label", type=LABELS, default=None,
              help="What a CSV row's timestamp means (default start; EPW/TMY3: end).")
@click.option("--year", type=int, default=None, help="Move a typical-year file onto this year.")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="First day (default: the weather's first whole day, or tomorrow).")
@click.option("--end", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help=f"Last day (at most {MAX_DAYS} days after --start).")
@click.option("--days", type=click.IntRange(1, MAX_DAYS), default=None, help="Number of days.")
@click.option("--decomposition", type=click.Choice(["dirint", "erbs", "disc"]), default=None,
              help="GHI -> DNI/DHI model (default: the site's calibration, else DIRINT).")
@local_time_options
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="CSV to write (default: stdout).")
@click.pass_context
def pv_forecast(ctx: click.Context, site_id: str | None, system: str | None,
                weather: str | None, label: str | None, year: int | None,
                start: dt.datetime | None, end: dt.datetime | None, days: int | None,
                decomposition: str | None, ambiguous: str, nonexistent: str,
                out: str | None) -> None:
    """P10/P50/P90 AC power [kW] per 15 minutes.

    \b
    vpp pv forecast --site CZ-MG-01 --weather forecast.csv --out pv.csv
    vpp pv forecast --system system.json --weather site.epw --year 2026 --start 2026-07-01 --days 7
    """
    from dataclasses import replace

    from forecasts.pv_forecast import forecast_pv

    model = _model(ctx, site_id, system)
    if decomposition:
        model = replace(model, decomposition=decomposition)
    wx = _weather(weather, model.system.tz, label, year, ambiguous, nonexistent)
    if wx is None and year is not None:
        click.echo("note: --year applies to a typical-year weather file (EPW, TMY3); "
                   "without --weather it is not used", err=True)
    if wx is None:
        from forecasts.climate import CLIMATE_SITE, distance_km

        far = distance_km(model.system.latitude, model.system.longitude, *CLIMATE_SITE)
        if far > 300:
            click.echo(f"WARNING: the shipped climatology is Changzhou's and this system lies "
                       f"{far:,.0f} km away: give its own --weather", err=True)
    index = _span(wx, start, end, days, model.system.tz)
    fc = forecast_pv(model, index, wx)
    frame = fc.frame.copy()
    frame.index.name = "timestamp"
    text = frame.to_csv(float_format="%.4f")
    daily = frame[["p10_kw", "p50_kw", "p90_kw"]].groupby(frame.index.date).sum() * 0.25
    daily.columns = ["P10 kWh", "P50 kWh", "P90 kWh"]
    own = fc.kind in model.bands
    click.echo(f"PV forecast from {fc.source} ({fc.kind}); "
               + ("calibrated " + str(model.calibrated.get("file", "")) if model.calibrated
                  else "nominal parameters")
               + f"; bands: {'fitted for this system' if own else 'shipped defaults'} "
                 f"({fc.kind})", err=True)
    click.echo(daily.round(1).to_string(), err=True)
    _emit(text, out)


def _read_inputs(model: PVModel, weather: str, label: str | None, measured: str, column: str,
                 unit: str, measured_label: str, ambiguous: str, nonexistent: str
                 ) -> tuple[Weather, pd.Series]:
    from forecasts.calibration import read_power_csv

    tz = model.system.tz
    wx = _weather(weather, tz, label, None, ambiguous, nonexistent)
    meas = read_power_csv(measured, column, unit, measured_label, tz, ambiguous, nonexistent,
                          max_kw=1.5 * model.ac_kw)
    return wx, meas


@pv.command("calibrate")
@click.option("--site", "site_id", default=None, help="Fleet site id.")
@click.option("--system", type=click.Path(dir_okay=False), default=None, help="System JSON.")
@click.option("--weather", type=click.Path(exists=True, dir_okay=False), required=True,
              help="Weather matching the measured period (CSV, EPW or TMY3).")
@click.option("--label", type=LABELS, default=None, help="Weather CSV timestamp meaning.")
@measured_options
@local_time_options
@click.option("--fix-shifts", is_flag=True,
              help="Move periods whose clock runs late or early (e.g. a logger on daylight "
                   "saving time) back onto the weather's clock before fitting.")
@click.option("--no-screen", is_flag=True,
              help="Fit on every daylight interval: no screening for clock shifts, stuck "
                   "values and outages.")
@click.option("--fit-orientation", is_flag=True,
              help="Also fit tilt (±10°) and azimuth (±15°) on a 5° grid (single array).")
@click.option("--fit-loss", is_flag=True,
              help="Keep the nameplate dc_kwp and fit the lumped loss factor instead.")
@click.option("--save", is_flag=True,
              help="Store the calibration: a site's in the calibrations folder (its plans "
                   "use it); a --system file's as <name>.calibrated.json beside it.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the calibrated system file (JSON, usable with --system).")
@click.pass_context
def pv_calibrate(ctx: click.Context, site_id: str | None, system: str | None, weather: str,
                 label: str | None, measured: str, column: str, unit: str,
                 measured_label: str, ambiguous: str, nonexistent: str, fix_shifts: bool,
                 no_screen: bool, fit_orientation: bool, fit_loss: bool, save: bool,
                 out: str | None) -> None:
    """Screen the measured history, fit effective DC capacity (or the loss factor),
    temperature coefficient, decomposition (and orientation) to measured AC power; print what
    the screening found, the parameters, the error before and after and any warning.

    \b
    vpp pv calibrate --system system.json --weather weather.csv --measured power.csv --out cal.json
    vpp pv forecast --system cal.json --weather forecast.csv
    vpp pv calibrate --site CZ-MG-01 --weather wx.csv --measured meter_pv.csv --save
    """
    from forecasts.calibration import calibrate
    from vpp.pv_inputs import calibration_record, system_document, write_calibration

    model = _model(ctx, site_id, system)
    wx, meas = _read_inputs(model, weather, label, measured, column, unit, measured_label,
                            ambiguous, nonexistent)
    cal = calibrate(model, wx, meas, fit_orientation=fit_orientation, fit_loss=fit_loss,
                    screen=not no_screen, fix_shifts=fix_shifts)
    if cal.quality is not None:
        click.echo("measured history:")
        for line in cal.quality.lines():
            click.echo(f"  {line}")
    click.echo("fitted parameters:")
    for k, v in cal.fitted.items():
        click.echo(f"  {k:<30} {v}")
    click.echo(f"\nerrors on the calibration data (the intervals kept; 15-min values over the "
               f"AC rating {model.ac_kw:g} kW, daily energy over the mean measured day):")
    click.echo(_metrics_table({"before (nominal)": cal.before.as_dict(),
                               "after (calibrated)": cal.after.as_dict()}))
    click.echo(f"\ndaily-energy bias on the calibration data: {cal.after.daily_bias:+.2%}")
    for w in cal.warnings:
        click.echo(f"warning: {w}")
    doc = system_document(cal.model, cal)
    if out:
        _write_json(out, doc)
        click.echo(f"wrote {out}: a system file with the fitted arrays, decomposition and "
                   f"bands (vpp pv forecast --system {out})", err=True)
    if save and system:
        path = Path(system).with_name(Path(system).stem + ".calibrated.json")
        _write_json(path, doc)
        click.echo(f"saved {path} (vpp pv forecast --system {path})", err=True)
    elif save:
        obj = ctx.find_root().obj
        folder = obj.get("calibrations") or catalog_of(ctx).calibrations or "calibrations"
        path = write_calibration(folder, calibration_record(site_id, cal))
        click.echo(f"saved {path}; plans of {site_id} use it with --calibrations {folder}",
                   err=True)


@pv.command("bands")
@click.option("--site", "site_id", default=None, help="Fleet site id.")
@click.option("--system", type=click.Path(dir_okay=False), default=None, help="System JSON.")
@click.option("--weather", type=click.Path(exists=True, dir_okay=False), required=True,
              help="The weather *forecasts* that were issued for the measured period (CSV, "
                   "EPW or TMY3): the bands are fitted for forecasts of its kind.")
@click.option("--label", type=LABELS, default=None, help="Weather CSV timestamp meaning.")
@measured_options
@local_time_options
@click.option("--fix-shifts", is_flag=True, help="Correct clock shifts of the measured power.")
@click.option("--save", is_flag=True,
              help="Store the bands: a site's in its calibration file, a --system file's in "
                   "<name>.calibrated.json beside it.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the system file with the new bands (JSON, usable with --system).")
@click.pass_context
def pv_bands(ctx: click.Context, site_id: str | None, system: str | None, weather: str,
             label: str | None, measured: str, column: str, unit: str, measured_label: str,
             ambiguous: str, nonexistent: str, fix_shifts: bool, save: bool,
             out: str | None) -> None:
    """Fit P10/P90 bands for forecasts from one kind of weather input (GHI, irradiance, cloud
    cover) on past forecasts and the power measured then; any system file or site.

    \b
    vpp pv bands --system cal.json --weather cloud_forecasts.csv --measured power.csv --out cal.json
    """
    from dataclasses import replace

    from forecasts.bands import coverage, fit_bands
    from forecasts.calibration import daylight_mask
    from forecasts.pv_forecast import forecast_pv
    from forecasts.quality import screen_power
    from vpp.pv_inputs import read_calibration, system_document, write_calibration
    from vpp.sites import read_document

    model = _model(ctx, site_id, system)
    wx, meas = _read_inputs(model, weather, label, measured, column, unit, measured_label,
                            ambiguous, nonexistent)
    fc = forecast_pv(model, meas.index, wx)
    f = fc.frame
    q = screen_power(meas, f["p50_kw"], f["clear_kw"], model.ac_kw, fix_shifts=fix_shifts)
    truth = q.measured_kw.where(q.clean | ~q.daylight)
    band = fit_bands(truth.to_numpy(), f["p50_kw"].to_numpy(), f["clear_kw"].to_numpy(),
                     f["kc"].to_numpy(), source=f"fitted on {fc.source} forecasts vs "
                     f"{Path(measured).name}, {meas.index[0]:%Y-%m-%d}.."
                     f"{meas.index[-1]:%Y-%m-%d}")
    new = replace(model, bands={**model.bands, fc.kind: band})
    p10, p90 = band.apply(f["p50_kw"].to_numpy(), f["clear_kw"].to_numpy(),
                          f["kc"].to_numpy(), model.ac_kw)
    cov = coverage(truth, pd.Series(p10, index=f.index), pd.Series(p90, index=f.index),
                   daylight_mask(f["clear_kw"]))
    click.echo(f"bands for forecasts from {fc.kind} weather: edges {list(band.edges)}, "
               f"q10 {[round(v, 3) for v in band.q10]}, q90 {[round(v, 3) for v in band.q90]},"
               f" kmax {band.kmax:.3f}")
    click.echo(f"P10-P90 coverage on these data: {cov:.1%} of "
               f"{int((q.clean & q.daylight).sum())} daylight intervals")
    if system:
        doc = system_document(new)
        old = read_document(system, "system file", "json")
        if old.get("calibration"):
            doc["calibration"] = old["calibration"]
        targets = [out] if out else []
        if save:
            targets.append(str(Path(system).with_name(Path(system).stem + ".calibrated.json")))
        for t in targets:
            _write_json(t, doc)
            click.echo(f"wrote {t}", err=True)
    elif save or out:
        if out:
            raise click.UsageError("--out writes a system file: use --system, or --save for a "
                                   "site")
        obj = ctx.find_root().obj
        folder = obj.get("calibrations") or catalog_of(ctx).calibrations or "calibrations"
        path = Path(folder) / f"{site_id}.toml"
        rec = read_calibration(path) if path.is_file() else {
            "site_id": site_id, "decomposition": model.decomposition, "arrays": []}
        rec["bands"] = {k: b.as_dict() for k, b in new.bands.items()}
        write_calibration(folder, rec)
        click.echo(f"saved {path}", err=True)


@pv.command("fit-errors")
@measured_options
@click.option("--forecast", "forecast_csv", type=click.Path(exists=True, dir_okay=False),
              required=True, help="The day-ahead forecasts issued for the measured period: "
                                  "CSV of `vpp pv forecast` (timestamp, p50_kw, clear_kw).")
@click.option("--tz", default="Asia/Shanghai", show_default=True,
              help="Zone of local timestamps without an offset.")
@local_time_options
@click.option("--base", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Error-model file whose weather and load sections are kept (default: the "
                   "shipped forecasts/data/simulation-errors.toml).")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="Error-model TOML to write (for `vpp simulate --errors`).")
def pv_fit_errors(measured: str, column: str, unit: str, measured_label: str,
                  forecast_csv: str, tz: str, ambiguous: str, nonexistent: str,
                  base: str | None, out: str) -> None:
    """Fit the simulation's PV forecast-error model ([pv_forecast] of the error-model file)
    to measured power and the forecasts that were made for it."""
    from forecasts.calibration import read_power_csv
    from forecasts.error_fit import fit_pv_errors, write_error_model
    from forecasts.synthetic import DEFAULT_FILE

    meas = read_power_csv(measured, column, unit, measured_label, tz, ambiguous, nonexistent)
    fc = {c: read_power_csv(forecast_csv, c, "kW", "start", tz, ambiguous, nonexistent)
          for c in ("p50_kw", "clear_kw")}
    idx = meas.index.intersection(fc["p50_kw"].index)
    if len(idx) < 96:
        raise InvalidInputError(f"{measured} and {forecast_csv} share {len(idx)} intervals; "
                                "need at least a day")
    idx = pd.date_range(idx[0], idx[-1], freq="15min")
    fit = fit_pv_errors(meas.reindex(idx), fc["p50_kw"].reindex(idx),
                        fc["clear_kw"].reindex(idx).fillna(0.0))
    path = write_error_model(out, fit, f"{Path(measured).name} vs {Path(forecast_csv).name}",
                             base or DEFAULT_FILE, idx[0].date())
    click.echo(f"[pv_forecast] from {fit.days} days ({fit.intervals} daylight intervals), "
               f"mean error {fit.bias:+.4f} (not modelled):")
    for k, v in fit.section().items():
        click.echo(f"  {k:<22} {v}")
    click.echo(f"wrote {path} (vpp simulate --errors {path})", err=True)


@pv.command("backtest")
@click.option("--dataset", default="serf-east", show_default=True,
              help="Shipped dataset (serf-east: 15 weeks of 2016; pvdaq-50: 2012 calibration, "
                   "2013 test) or a dataset TOML (system, measured power, weather).")
@click.option("--calibration-days", type=float, default=None,
              help="Days to calibrate on (default: the dataset's).")
@click.option("--fit-orientation", is_flag=True, help="Also fit tilt and azimuth.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="PNG: measured vs P10/P50/P90 and baseline over a test fortnight.")
@click.option("--write-bands", type=click.Path(dir_okay=False), default=None,
              help="Write the fitted band tables as a pv-bands TOML file.")
def pv_backtest_cmd(dataset: str, calibration_days: float | None, fit_orientation: bool,
                    plot: str | None, write_bands: str | None) -> None:
    """Calibrate on the first part of real measured PV data, forecast the rest, and compare
    with a plain baseline (PVWatts, Erbs, nominal orientation, only capacity fitted).

    The chain is driven by the measured (satellite) weather of the test period: that tests
    the model chain, not a forecast. The day-ahead persistence forecast below it is one."""
    from forecasts.backtest import pv_backtest
    from forecasts.pv_forecast import PVModel
    from vpp.pv_inputs import dataset_path, load_pv_dataset

    if not dataset_path(dataset).is_file():
        raise InvalidInputError(f"dataset {dataset}: neither a shipped dataset (serf-east, "
                                "pvdaq-50) nor a file")
    system, wx, meas, meta = load_pv_dataset(dataset)
    model = PVModel(system)
    if calibration_days is None and meta.get("test_start") is not None:
        r = pv_backtest(model, wx, meas, split=meta["test_start"], end=meta.get("test_end"),
                        fit_orientation=fit_orientation, fix_shifts=bool(meta["fix_shifts"]))
    else:
        days = calibration_days or meta.get("calibration_days") or 30
        r = pv_backtest(model, wx, meas, days, fit_orientation=fit_orientation,
                        fix_shifts=bool(meta.get("fix_shifts")))
    test_end = r.measured_kw.index[-1]
    click.echo(f"{meta.get('name')}: {meta.get('source')}")
    last_cal = r.split - pd.Timedelta(minutes=15)
    click.echo(f"calibration {meas.index[0]:%Y-%m-%d}..{last_cal:%Y-%m-%d}, test "
               f"{r.split:%Y-%m-%d}..{test_end:%Y-%m-%d}; weather: {wx.source}\n")
    if r.calibration.quality is not None:
        click.echo("calibration history:")
        for line in r.calibration.quality.lines():
            click.echo(f"  {line}")
        click.echo("test history (scored on the intervals kept):")
        for line in r.test_quality.lines():
            click.echo(f"  {line}")
    click.echo("\nfitted: " + ", ".join(f"{k}={v}" for k, v in r.calibration.fitted.items()
                                        if k in ("dc_kwp", "gamma_pdc", "decomposition",
                                                 "tilt_deg", "azimuth_deg", "ac_kw")))
    click.echo(f"calibration data: daily-energy bias {r.calibration.after.daily_bias:+.2%}")
    for w in r.calibration.warnings:
        click.echo(f"warning: {w}")
    click.echo(f"baseline fitted: dc_kwp={r.baseline.fitted['dc_kwp']} (as measured), "
               f"{r.baseline_clean.fitted['dc_kwp']} (screened)\n")
    click.echo(f"1. model chain, driven by the measured weather of the test period (tests the "
               f"model, not a forecast); 15-min over the AC rating {model.ac_kw:g} kW, daily "
               "energy over the mean measured day:")
    click.echo(_metrics_table({
        "calibrated chain": r.chain.as_dict(),
        "baseline (PVWatts+Erbs, capacity only)": r.plain.as_dict(),
        "baseline fitted on the screened data": r.plain_clean.as_dict()}))
    click.echo(f"P10-P90 band coverage of measured 15-min daylight values: "
               f"{r.band_coverage:.1%} (target 78-82 %)")
    lead = (1 - r.chain.nrmse / r.plain.nrmse, 1 - r.chain.daily_nmae / r.plain.daily_nmae)
    click.echo(f"lead over the baseline: 15-min nRMSE {lead[0]:+.1%} (target >= 15 %), "
               f"daily-energy nMAE {lead[1]:+.1%} (target >= 10 %)")
    click.echo("\n2. day-ahead forecast: persistence of the previous day's measured clear-sky "
               "index (no cloud-cover or NWP forecasts ship with the data):")
    click.echo(_metrics_table({"calibrated chain": r.forecast_chain.as_dict(),
                               "baseline": r.forecast_plain.as_dict()}))
    click.echo(f"P10-P90 coverage (bands fitted on the calibration period's persistence "
               f"forecasts): {r.forecast_coverage:.1%}")
    if write_bands:
        _write_bands(write_bands, r, meta)
        click.echo(f"wrote {write_bands}", err=True)
    if plot:
        _plot_backtest(r, plot)
        click.echo(f"wrote {plot}", err=True)


def _write_bands(path: str, r: Any, meta: dict) -> None:
    """The shipped defaults: forecasts from GHI or full irradiance files and from cloud
    cover take the day-ahead forecast table (plans run on forecasts; no cloud-cover forecasts
    with measurements are at hand, and a cloud-cover forecast carries no more than a GHI one),
    the climatology its own. Defaults keep P90 at or below the clear-sky AC power (``kmax``
    1): the dataset's own ratio of measured to clear-sky power belongs to its system, and a
    calibrated system's tables carry its own."""
    from forecasts.bands import default_bands

    fc = r.forecast_bands.as_dict()
    clim = r.climatology_bands.as_dict()
    lines = [f"# P10/P90 band tables by weather source, written by `vpp pv backtest "
             f"--write-bands` on {meta.get('name')}.",
             "# Errors in units of the clear-sky AC power, per clear-sky-index bin; P90 at most "
             "kmax x the clear-sky AC power (see forecasts/bands.py).", ""]
    notes = {"irradiance": " (GHI-only data; used for full irradiance forecasts too)",
             "ghi": "",
             "cloud_cover": " (assumed for cloud-cover forecasts until cloud-cover forecasts "
                            "with measurements are available)",
             "climatology": ""}
    for kind in ("irradiance", "ghi", "cloud_cover", "climatology"):
        b = clim if kind == "climatology" else fc
        lines.append(f"[bands.{kind}]")
        for k in ("edges", "q10", "q90"):
            lines.append(f"{k} = {json.dumps(b[k])}")
        lines.append("kmax = 1.0")
        if "reference_ratio" in b:
            lines.append(f"reference_ratio = {b['reference_ratio']}")
        src = b["source"] + notes[kind] + "; " + str(meta.get("name"))
        lines.append(f"source = {json.dumps(src)}")
        lines.append("")
    Path(path).write_text("\n".join(lines), "utf-8")
    default_bands.cache_clear()


def _plot_backtest(r: Any, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = r.forecast.frame
    end = r.split + pd.Timedelta(days=14)
    sel = (f.index >= r.split) & (f.index < end)
    fig, ax = plt.subplots(figsize=(13, 4.2))
    ax.fill_between(f.index[sel], f["p10_kw"][sel], f["p90_kw"][sel], color="#f3c969",
                    alpha=0.5, label="P10-P90", step="post")
    ax.step(f.index[sel], f["p50_kw"][sel], where="post", color="#b36b00", lw=1, label="P50")
    ax.step(f.index[sel], r.baseline_forecast.frame["p50_kw"][sel], where="post",
            color="#777", lw=0.8, ls="--", label="baseline")
    ax.step(r.measured_kw.index[sel], r.measured_kw[sel], where="post", color="k", lw=0.8,
            label="measured")
    ax.set_ylabel("AC power [kW]")
    ax.set_title("PV backtest, first two test weeks")
    ax.legend(loc="upper right", ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@click.group()
def load() -> None:
    """Load forecasts from 15-minute meter history (work calendar with 调休 holidays)."""


@load.command("forecast")
@click.option("--history", type=click.Path(exists=True, dir_okay=False), required=True,
              help="Meter CSV: timestamp,load_kw at 15 minutes.")
@click.option("--date", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="First day to forecast (default: the day after the history).")
@click.option("--days", type=click.IntRange(1, 31), default=1, show_default=True)
@click.option("--weeks", type=click.IntRange(1, 52), default=4, show_default=True,
              help="Weeks of history the similar days come from.")
@click.option("--out", type=click.Path(dir_okay=False), default=None)
def load_forecast(history: str, date: dt.datetime | None, days: int, weeks: int,
                  out: str | None) -> None:
    """Similar-day load forecast [kW] (working day, weekend, statutory holiday)."""
    from forecasts.load import forecast_load, read_meter_csv

    hist = read_meter_csv(history, gaps=True)
    start = (pd.Timestamp(date).tz_localize("Asia/Shanghai") if date else
             hist.index[-1].normalize() + pd.Timedelta(days=1))
    index = pd.date_range(start, periods=96 * days, freq="15min")
    fc = forecast_load(hist, index, weeks)
    before = hist[hist.index < start]
    later = int(hist[hist.index >= start].notna().sum())
    if later:
        click.echo(f"note: {later} meter intervals from {start:%Y-%m-%d} on are not used: a "
                   "forecast learns only from what was measured before it", err=True)
    gap = (start - before.dropna().index[-1]).days
    if gap > 7:
        click.echo(f"warning: the history ends {gap} days before {start:%Y-%m-%d}; the "
                   "forecast repeats that older pattern", err=True)
    frame = fc.to_frame()
    frame.index.name = "timestamp"
    text = frame.to_csv(float_format="%.3f")
    click.echo(f"load forecast {start:%Y-%m-%d} +{days} d from {int(before.notna().sum())} "
               f"meter intervals: {fc.sum() * 0.25:,.0f} kWh, peak {fc.max():,.0f} kW",
               err=True)
    _emit(text, out)


@load.command("backtest")
@click.argument("histories", nargs=-1, required=True)
@click.option("--days", type=click.IntRange(1, 366), default=28, show_default=True,
              help="Last days to forecast one day ahead each.")
@click.option("--weeks", type=click.IntRange(1, 52), default=4, show_default=True)
def load_backtest_cmd(histories: tuple[str, ...], days: int, weeks: int) -> None:
    """MAPE and nMAE of rolling day-ahead forecasts, per site.

    HISTORIES are meter CSVs, optionally named: CZ-MG-01=meter01.csv meter02.csv …
    """
    from forecasts.backtest import load_backtest
    from forecasts.load import read_meter_csv

    rows = {}
    for item in histories:
        name, _, path = item.rpartition("=")
        name = name or Path(path).stem
        if not Path(path).is_file():
            raise InvalidInputError(f"meter history {path} does not exist")
        r = load_backtest(read_meter_csv(path, gaps=True), days, weeks)
        rows[name] = {"days": r.days, "MAPE": f"{r.mape:.2%}", "nMAE": f"{r.nmae:.2%}"}
    click.echo(pd.DataFrame(rows).T.to_string())

