"""``vpp pv …`` and ``vpp load …``: forecasts, calibration and backtests from the command line."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click
import pandas as pd

from forecasts.backtest import load_backtest, pv_backtest
from forecasts.bands import default_bands
from forecasts.calibration import read_power_csv
from forecasts.load import forecast_load, read_meter_csv
from forecasts.pv_forecast import PVModel, forecast_pv
from forecasts.weather import Weather, read_weather
from models import InvalidInputError
from vpp.catalog import Catalog
from vpp.pv_inputs import (
    DEFAULT_DATASET,
    calibration_record,
    load_pv_dataset,
    load_system_json,
    site_pv_model,
    write_calibration,
)

LABELS = click.Choice(["start", "end", "instant"])


def catalog_of(ctx: click.Context) -> Catalog:
    obj = ctx.find_root().obj
    if "catalog" not in obj:
        obj["catalog"] = Catalog.load(obj["data_dir"], obj["fleet"], obj.get("calibrations"),
                                      obj.get("feeders"))
    return obj["catalog"]


def _model(ctx: click.Context, site_id: str | None, system: str | None) -> PVModel:
    if bool(site_id) == bool(system):
        raise click.UsageError("give exactly one of --site ID or --system FILE")
    if system:
        return PVModel(load_system_json(system))
    catalog = catalog_of(ctx)
    site = catalog.fleet.site(site_id)
    if not site.pv_arrays:
        raise InvalidInputError(f"site {site_id} has no PV arrays")
    return site_pv_model(site, catalog.calibrations)


def _weather(path: str | None, tz: str, label: str | None, year: int | None) -> Weather | None:
    return read_weather(path, tz, label, year) if path else None


def _span(weather: Weather | None, start: dt.datetime | None, end: dt.datetime | None,
          days: int | None, tz: str) -> pd.DatetimeIndex:
    """15-minute interval starts: --start..--end (whole days, end inclusive), or --days from
    --start, or the whole days the weather covers, or tomorrow."""
    if start is None and weather is not None:
        first = weather.frame.index[0].tz_convert(tz).ceil("D")
        last = weather.frame.index[-1].tz_convert(tz).floor("D")
        s, e = first, last
        if days:
            e = s + pd.Timedelta(days=days)
        if e <= s:
            raise InvalidInputError(f"{weather.source} does not cover a whole day in {tz}")
        return pd.date_range(s, e, freq="15min", inclusive="left")
    s = (pd.Timestamp(start).tz_localize(tz) if start else
         (pd.Timestamp.now(tz=tz) + pd.Timedelta(days=1)).normalize())
    if end is not None:
        e = pd.Timestamp(end).tz_localize(tz) + pd.Timedelta(days=1)
    else:
        e = s + pd.Timedelta(days=days or 1)
    if e <= s:
        raise InvalidInputError(f"--end {end:%Y-%m-%d} is before --start {start:%Y-%m-%d}")
    return pd.date_range(s, e, freq="15min", inclusive="left")


def _emit(csv_text: str, out: str | None) -> None:
    """Write the CSV to ``out`` (and say so on stderr) or to stdout."""
    if out:
        Path(out).write_text(csv_text, "utf-8")
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


@click.group()
def pv() -> None:
    """PV forecasts (P10/P50/P90, 15 min) with pvlib, calibration and backtest."""


@pv.command("forecast")
@click.option("--site", "site_id", default=None, help="Fleet site id, e.g. CZ-MG-01.")
@click.option("--system", type=click.Path(dir_okay=False), default=None,
              help="System JSON for a PV system not in the fleet (lat, lon, altitude, arrays).")
@click.option("--weather", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Weather file: CSV with named columns, EPW or TMY3. Default: climatology.")
@click.option("--label", type=LABELS, default=None,
              help="What a CSV row's timestamp means (default start; EPW/TMY3: end).")
@click.option("--year", type=int, default=None, help="Move a typical-year file onto this year.")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="First day (default: the weather's first whole day, or tomorrow).")
@click.option("--end", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Last day.")
@click.option("--days", type=click.IntRange(1, 400), default=None, help="Number of days.")
@click.option("--decomposition", type=click.Choice(["dirint", "erbs", "disc"]), default=None,
              help="GHI -> DNI/DHI model (default: the site's calibration, else DIRINT).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="CSV to write (default: stdout).")
@click.pass_context
def pv_forecast(ctx: click.Context, site_id: str | None, system: str | None,
                weather: str | None, label: str | None, year: int | None,
                start: dt.datetime | None, end: dt.datetime | None, days: int | None,
                decomposition: str | None, out: str | None) -> None:
    """P10/P50/P90 AC power [kW] per 15 minutes.

    \b
    vpp pv forecast --site CZ-MG-01 --weather forecast.csv --out pv.csv
    vpp pv forecast --system system.json --weather site.epw --year 2026 --start 2026-07-01 --days 7
    """
    model = _model(ctx, site_id, system)
    if decomposition:
        model = PVModel(model.system, decomposition, model.transposition, model.bands,
                        model.calibrated)
    wx = _weather(weather, model.system.tz, label, year)
    index = _span(wx, start, end, days, model.system.tz)
    fc = forecast_pv(model, index, wx)
    frame = fc.frame.copy()
    frame.index.name = "timestamp"
    text = frame.to_csv(float_format="%.4f")
    daily = frame[["p10_kw", "p50_kw", "p90_kw"]].groupby(frame.index.date).sum() * 0.25
    daily.columns = ["P10 kWh", "P50 kWh", "P90 kWh"]
    click.echo(f"PV forecast from {fc.source} ({fc.kind}); "
               + ("calibrated " + str(model.calibrated.get("file", "")) if model.calibrated
                  else "nominal parameters"), err=True)
    click.echo(daily.round(1).to_string(), err=True)
    _emit(text, out)


@pv.command("calibrate")
@click.option("--site", "site_id", default=None, help="Fleet site id.")
@click.option("--system", type=click.Path(dir_okay=False), default=None, help="System JSON.")
@click.option("--weather", type=click.Path(exists=True, dir_okay=False), required=True,
              help="Weather matching the measured period (CSV, EPW or TMY3).")
@click.option("--label", type=LABELS, default=None, help="Weather CSV timestamp meaning.")
@click.option("--measured", type=click.Path(exists=True, dir_okay=False), required=True,
              help="CSV with timestamp and measured AC power.")
@click.option("--column", default="ac_power_kw", show_default=True,
              help="Power column of --measured.")
@click.option("--unit", type=click.Choice(["kW", "W"]), default="kW", show_default=True)
@click.option("--measured-label", type=click.Choice(["start", "end"]), default="start",
              show_default=True, help="Power timestamps mark the interval start or end.")
@click.option("--fit-orientation", is_flag=True,
              help="Also fit tilt (±10°) and azimuth (±15°) on a 5° grid (single array).")
@click.option("--fit-loss", is_flag=True,
              help="Keep the nameplate dc_kwp and fit the lumped loss factor instead.")
@click.option("--save", is_flag=True,
              help="Store the calibration with the site (calibrations folder) for its plans.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the calibration record as JSON.")
@click.pass_context
def pv_calibrate(ctx: click.Context, site_id: str | None, system: str | None, weather: str,
                 label: str | None, measured: str, column: str, unit: str,
                 measured_label: str, fit_orientation: bool, fit_loss: bool, save: bool,
                 out: str | None) -> None:
    """Fit effective DC capacity (or the loss factor), temperature coefficient, decomposition
    (and orientation) to measured AC power; print the parameters and the error before and
    after.

    \b
    vpp pv calibrate --system system.json --weather weather.csv --measured power.csv
    vpp pv calibrate --site CZ-MG-01 --weather wx.csv --measured meter_pv.csv --save
    """
    from forecasts.calibration import calibrate

    model = _model(ctx, site_id, system)
    wx = read_weather(weather, model.system.tz, label)
    meas = read_power_csv(measured, column, unit, measured_label, model.system.tz)
    cal = calibrate(model, wx, meas, fit_orientation=fit_orientation, fit_loss=fit_loss)
    rec = calibration_record(site_id or Path(system).stem, cal)
    click.echo("fitted parameters:")
    for k, v in cal.fitted.items():
        click.echo(f"  {k:<20} {v}")
    click.echo(f"\nerrors on the calibration data (15-min values over the AC rating "
               f"{model.ac_kw:g} kW, daily energy over the mean measured day):")
    click.echo(_metrics_table({"before (nominal)": cal.before.as_dict(),
                               "after (calibrated)": cal.after.as_dict()}))
    if out:
        Path(out).write_text(json.dumps(rec, indent=1, ensure_ascii=False), "utf-8")
        click.echo(f"wrote {out}", err=True)
    if save:
        if not site_id:
            raise click.UsageError("--save stores a fleet site's calibration: use --site")
        obj = ctx.find_root().obj
        folder = obj.get("calibrations") or catalog_of(ctx).calibrations or "calibrations"
        path = write_calibration(folder, rec)
        click.echo(f"saved {path}; plans of {site_id} use it with --calibrations {folder}",
                   err=True)


@pv.command("backtest")
@click.option("--dataset", type=click.Path(exists=True, dir_okay=False),
              default=str(DEFAULT_DATASET), show_default="shipped NREL SERF East data",
              help="Dataset TOML (system, measured power, weather).")
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
    with a plain baseline (PVWatts, Erbs, nominal orientation, only capacity fitted)."""
    system, wx, meas, meta = load_pv_dataset(dataset)
    days = calibration_days or meta.get("calibration_days") or 30
    model = PVModel(system)
    r = pv_backtest(model, wx, meas, days, fit_orientation=fit_orientation)
    click.echo(f"{meta.get('name')}: {meta.get('source')}")
    last_cal = r.split - pd.Timedelta(minutes=15)
    click.echo(f"calibration {meas.index[0]:%Y-%m-%d}..{last_cal:%Y-%m-%d}, test "
               f"{r.split:%Y-%m-%d}..{meas.index[-1]:%Y-%m-%d}; weather: {wx.source}\n")
    click.echo("fitted: " + ", ".join(f"{k}={v}" for k, v in r.calibration.fitted.items()
                                      if k in ("dc_kwp", "gamma_pdc", "decomposition",
                                               "tilt_deg", "azimuth_deg")))
    click.echo(f"baseline fitted: dc_kwp={r.baseline.fitted['dc_kwp']}\n")
    click.echo(f"test-period errors (15-min over the AC rating {model.ac_kw:g} kW, daily "
               "energy over the mean measured day):")
    click.echo(_metrics_table({"calibrated chain": r.chain.as_dict(),
                               "baseline (PVWatts+Erbs, capacity only)": r.plain.as_dict()}))
    click.echo(f"\nP10-P90 band coverage of measured 15-min daylight values: "
               f"{r.band_coverage:.1%} (target 75-85 %)")
    better = (r.chain.nrmse < r.plain.nrmse, r.chain.daily_nmae < r.plain.daily_nmae)
    click.echo(f"chain better than baseline: 15-min nRMSE {better[0]}, daily-energy nMAE "
               f"{better[1]}")
    if write_bands:
        _write_bands(write_bands, r, meta)
        click.echo(f"wrote {write_bands}", err=True)
    if plot:
        _plot_backtest(r, plot)
        click.echo(f"wrote {plot}", err=True)


def _write_bands(path: str, r: Any, meta: dict) -> None:
    ghi = r.calibration.model.bands.as_dict()
    clim = r.climatology_bands.as_dict()
    # cloud cover carries less than GHI and more than nothing: the wider of the two tables
    # per quantile, an assumption until cloud-cover forecasts with measurements are at hand
    cc = {"edges": [0.0, 9.0], "q10": [min(min(ghi["q10"]), clim["q10"][0])],
          "q90": [max(max(ghi["q90"]), clim["q90"][0])],
          "source": "assumed: the widest GHI bin and the climatological band combined"}
    lines = [f"# P10/P90 band tables by weather source, written by `vpp pv backtest "
             f"--write-bands` on {meta.get('name')}.",
             "# Errors in units of the clear-sky AC power, per clear-sky-index bin (see "
             "forecasts/bands.py).", ""]
    for kind, b in (("irradiance", ghi), ("ghi", ghi), ("cloud_cover", cc),
                    ("climatology", clim)):
        lines.append(f"[bands.{kind}]")
        for k in ("edges", "q10", "q90"):
            lines.append(f"{k} = {json.dumps(b[k])}")
        src = b["source"] if kind != "irradiance" else b["source"] + " (GHI-only data; used " \
            "for full irradiance too)"
        lines.append(f"source = {json.dumps(src + '; ' + str(meta.get('name')))}")
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
    hist = read_meter_csv(history)
    start = (pd.Timestamp(date).tz_localize("Asia/Shanghai") if date else
             hist.index[-1].normalize() + pd.Timedelta(days=1))
    index = pd.date_range(start, periods=96 * days, freq="15min")
    fc = forecast_load(hist, index, weeks)
    frame = fc.to_frame()
    frame.index.name = "timestamp"
    text = frame.to_csv(float_format="%.3f")
    click.echo(f"load forecast {start:%Y-%m-%d} +{days} d from {len(hist)} meter intervals: "
               f"{fc.sum() * 0.25:,.0f} kWh, peak {fc.max():,.0f} kW", err=True)
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
    rows = {}
    for item in histories:
        name, _, path = item.rpartition("=")
        name = name or Path(path).stem
        if not Path(path).is_file():
            raise InvalidInputError(f"meter history {path} does not exist")
        r = load_backtest(read_meter_csv(path), days, weeks)
        rows[name] = {"days": r.days, "MAPE": f"{r.mape:.2%}", "nMAE": f"{r.nmae:.2%}"}
    click.echo(pd.DataFrame(rows).T.to_string())

