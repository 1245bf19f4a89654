"""``vpp sites`` and ``vpp tariff``: what the data says, without solving anything."""

from __future__ import annotations

import datetime as dt

import click

from vpp.cli import catalog_of, day_of, day_option


def text_table(rows: list[dict[str, object]]) -> str:
    """Rows of equal keys as fixed-width text: numbers right-aligned, text left-aligned."""
    if not rows:
        return ""
    keys = list(rows[0])
    cells = [[str(k) for k in keys]] + [[_cell(r[k]) for k in keys] for r in rows]
    width = [max(len(c[i]) for c in cells) for i in range(len(keys))]
    right = [all(isinstance(r[k], int | float) for r in rows) for k in keys]
    return "\n".join("  ".join(c[i].rjust(width[i]) if right[i] else c[i].ljust(width[i])
                               for i in range(len(keys))).rstrip() for c in cells)


def _cell(v: object) -> str:
    if isinstance(v, float):
        return f"{v:,.1f}"
    return str(v)


@click.command()
@click.pass_context
def sites(ctx: click.Context) -> None:
    """List the fleet: PV, storage, grid connection and subsidy window of each site."""

    catalog = catalog_of(ctx)
    rows = []
    for s in catalog.fleet.sites:
        st = s.storage
        w = catalog.paid_window(s)
        rows.append({
            "site": s.id, "district": s.district, "name": s.name,
            "PV [kWp]": s.pv_dc_kwp,
            "storage [kW/kWh]": f"{st.power_kw:g}/{st.energy_kwh:g}" if st else "-",
            "connected": st.grid_connection_date.isoformat() if st else "-",
            "subsidy window": f"{w[0]}..{w[1]}" if w else "not eligible",
            "export [kW]": f"{s.grid.export_limit_kw:g}" if s.grid.export_limit_kw
            else "anti-backflow",
            "billing": s.billing_basis,
        })
    click.echo(f"fleet {catalog.fleet.version}: {catalog.fleet.source}"
               + (" (ILLUSTRATIVE)" if catalog.fleet.illustrative else ""))
    click.echo(text_table(rows))


@click.command()
@day_option("Day (local). Default: tomorrow.")
@click.option("--tariff", "tariff_id", default="jiangsu-ci-two-part-1-10kv", show_default=True)
@click.option("--tariff-version", default=None)
@click.option("--transformer-kva", type=float, default=1000.0, show_default=True,
              help="Critical peak applies at or above the tariff's threshold [kVA].")
@click.pass_context
def tariff(ctx: click.Context, date: dt.datetime | None, tariff_id: str,
           tariff_version: str | None, transformer_kva: float) -> None:
    """Show the time-of-use periods and prices of one day."""
    import pandas as pd

    from vpp.tariffs import price_series
    from vpp.timebase import horizon

    catalog = catalog_of(ctx)
    day = day_of(date)
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
