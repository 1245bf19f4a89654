"""The ``vpp`` command line: the group, its shared options and its error handling.

Each command lives in a module of its own and is imported only when it runs (``vpp --help``
imports none of them, nor pandas, pvlib, Pyomo, matplotlib or FastAPI). Errors in the
user's input or infeasible plans end with a one-paragraph message naming every bad value and
exit status 2 (never a traceback); ``--verbose`` adds solver logging.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import sys
from typing import Any

import click

#: Command name -> ("module:attribute", short help shown by ``vpp --help``).
COMMANDS: dict[str, tuple[str, str]] = {
    "plan": ("vpp.cli_plan:plan", "Day-ahead dispatch plan for one site or the fleet."),
    "audit": ("vpp.cli_plan:audit", "Recheck plan JSON files: balance, SOC, limits, costs."),
    "flex": ("vpp.cli_plan:flex", "Flexibility envelope of the fleet and each site."),
    "sites": ("vpp.cli_info:sites", "List the fleet with each site's subsidy window."),
    "tariff": ("vpp.cli_info:tariff", "Time-of-use periods and prices of one day."),
    "simulate": ("vpp.cli_simulate:simulate_cmd", "Simulate months of operation and report."),
    "pv": ("vpp.cli_forecast:pv", "PV forecasts with pvlib, calibration and backtest."),
    "load": ("vpp.cli_forecast:load", "Load forecasts from meter history."),
}


#: Where ``vpp plan`` reads a site's measured initial state: ``"module:function"`` entries
#: registered by the package that owns the database (``service/cli.py``), called as
#: ``function(database_url, site, plan_start)`` -> :class:`vpp.state.InitialState` or None.
#: Empty (``vpp`` without the service): plans start from their options only.
STATE_READERS: list[str] = []


def state_reader() -> Any:
    """The first registered state reader (see :data:`STATE_READERS`), or None."""
    if not STATE_READERS:
        return None
    module, attr = STATE_READERS[0].split(":")
    return getattr(importlib.import_module(module), attr)


class LazyGroup(click.Group):
    """A group whose commands (:data:`COMMANDS`, and ``lazy`` added by other packages) are
    imported on first use; its help lists them from their short help without importing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, tuple[str, str]] = dict(COMMANDS)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy and name not in self.commands:
            module, attr = self.lazy[name][0].split(":")
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy and name not in self.commands:
                rows.append((name, self.lazy[name][1]))
            else:
                rows.append((name, self.commands[name].get_short_help_str(80)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (ValueError, RuntimeError) as exc:
            from models.errors import InfeasiblePlanError, InvalidInputError

            if not isinstance(exc, InvalidInputError | InfeasiblePlanError | ValueError):
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=LazyGroup)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder laid out like vpp/data (tariffs/, policies/, fleet/, loads/). "
                   "Default: $VPP_DATA_DIR or the shipped data.")
@click.option("--fleet", type=click.Path(dir_okay=False), default=None, envvar="VPP_FLEET",
              help="Fleet TOML file instead of the shipped 30 pilot microgrids. Default: "
                   "$VPP_FLEET or the shipped fleet.")
@click.option("--calibrations", type=click.Path(file_okay=False), default=None,
              envvar="VPP_CALIBRATIONS",
              help="Folder of PV calibrations (<site>.toml from `vpp pv calibrate --save`). "
                   "Default: $VPP_CALIBRATIONS or <data-dir>/calibrations if it exists.")
@click.option("--feeders", type=click.Path(dir_okay=False), default=None,
              envvar="VPP_FEEDERS",
              help="Feeder file (shared import/export caps) instead of the shipped one. "
                   "Default: $VPP_FEEDERS or the shipped one (with the shipped fleet).")
@click.option("-v", "--verbose", is_flag=True, help="Log solver steps to stderr.")
@click.pass_context
def main(ctx: click.Context, data_dir: str | None, fleet: str | None,
         calibrations: str | None, feeders: str | None, verbose: bool) -> None:
    """Dispatch optimizer for Changzhou's pilot smart microgrids and their VPP."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = {"data_dir": data_dir, "fleet": fleet, "calibrations": calibrations,
               "feeders": feeders}


def catalog_of(ctx: click.Context) -> Any:
    """The command line's :class:`vpp.catalog.Catalog` (loaded once per invocation)."""
    from vpp.catalog import Catalog

    obj = ctx.find_root().obj
    if "catalog" not in obj:
        obj["catalog"] = Catalog.load(obj["data_dir"], obj["fleet"], obj.get("calibrations"),
                                      obj.get("feeders"))
    return obj["catalog"]


def tomorrow() -> dt.date:
    """Tomorrow in Changzhou (UTC+8, no daylight saving)."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=8) + dt.timedelta(days=1)).date()


def day_option(help_text: str) -> Any:
    """``--date YYYY-MM-DD``, checked against the supported range; default tomorrow."""
    return click.option("--date", "date", type=click.DateTime(["%Y-%m-%d"]), default=None,
                        help=help_text)


def day_of(value: dt.datetime | None) -> dt.date:
    """The chosen day (default tomorrow), inside the supported range."""
    from models import InvalidInputError
    from vpp.options import DATE_MAX, DATE_MIN

    day = value.date() if value else tomorrow()
    if not DATE_MIN <= day <= DATE_MAX:
        raise InvalidInputError(f"--date={day}: dates from {DATE_MIN} to {DATE_MAX} are "
                                "supported")
    return day


if __name__ == "__main__":
    main()
