"""What a user may choose, one schema per command family, with every allowed range.

The CLI options (:func:`cli_options`) and the API request schemas (``service``) are both
derived from these pydantic models, so a range is declared once. Limits that are policy data
(the subsidy rate's maximum) come from the policy file (:func:`with_policy`). Every value is
checked at once and every bad field named (:func:`parse`).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import annotated_types as at
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from models import InvalidInputError, SolveOptions

#: The dates plans and simulations support (local calendar days, inclusive).
DATE_MIN = dt.date(2000, 1, 1)
DATE_MAX = dt.date(2099, 12, 31)
MAX_DAYS = 7
MAX_MONTHS = 60
MAX_SIM_DAYS = 1826

M = TypeVar("M", bound=BaseModel)


def _supported(day: dt.date) -> dt.date:
    if not DATE_MIN <= day <= DATE_MAX:
        raise ValueError(f"dates from {DATE_MIN} to {DATE_MAX} are supported")
    return day


#: A local calendar day inside the supported range.
SupportedDate = Annotated[dt.date, AfterValidator(_supported)]


class Options(BaseModel):
    """Base of every options schema: frozen, no unknown fields, finite numbers only."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class SolverChoices(Options):
    """How hard the solver works on each plan."""

    mip_rel_gap: float = Field(1e-3, ge=0, le=0.05, description=(
        "Certified relative optimality gap every plan must reach [-]"),
        json_schema_extra={"cli": "--gap"})
    time_limit_s: float = Field(60.0, gt=0, le=3600, description=(
        "Time budget of each plan's solve [s]; a plan it stops above the gap comes back "
        "with status time_limit"), json_schema_extra={"cli": "--time-limit"})

    def solve_options(self, method: Literal["auto", "milp"] = "auto") -> SolveOptions:
        return SolveOptions(mip_rel_gap=self.mip_rel_gap, time_limit_s=self.time_limit_s,
                            method=method)


class PlanOptions(SolverChoices):
    """A day-ahead plan's choices (CLI ``vpp plan``, API ``POST /v1/plans``)."""

    days: int = Field(1, ge=1, le=MAX_DAYS, description="Horizon in calendar days [d]")
    subsidy_aware: bool = Field(True, description=(
        "Count the subsidy in the objective; the subsidy the plan earns is reported either "
        "way"), json_schema_extra={"cli": "--subsidy-blind", "invert": True, "cli_help": (
            "Leave the subsidy out of the objective (plan as if it were not paid); the "
            "subsidy the plan earns is reported either way")})
    subsidy_rate_yuan_per_kwh: float | None = Field(None, ge=0, description=(
        "Subsidy per kWh discharged [yuan/kWh], at most the policy's maximum; default the "
        "policy's rate"), json_schema_extra={"cli": "--subsidy-rate",
                                             "cli_range": "[0, the policy's maximum]"})
    month_peak_kw: float = Field(0.0, ge=0, le=1e7, description=(
        "Highest 15-minute import so far this billing month [kW]; default the site's stored "
        "measurements, else 0"), json_schema_extra={"cli_default": (
            "a single site's stored measurements (see --db, --no-state), else 0")})
    soc_initial_frac: float | None = Field(None, ge=0, le=1, description=(
        "Initial state of charge [-] of nameplate energy; default the site's stored SOC, "
        "else its nominal one (vpp plan: of a single --site, see --db and --no-state)"),
        json_schema_extra={"cli": "--soc-initial"})
    soc_terminal_min_frac: float | None = Field(None, ge=0, le=1, description=(
        "Lowest end-of-horizon state of charge [-] of nameplate energy; default the "
        "initial state"), json_schema_extra={"cli": "--soc-terminal"})
    tariff_version: str | None = Field(None, min_length=1, max_length=100, description=(
        "Tariff version to force, e.g. su-fagaijiage-2023-555; default the one in force"))
    method: Literal["auto", "milp"] = Field("auto", description=(
        "auto: LP, repair, MILP only if needed; milp: the Pyomo reference MILP"))
    pv_quantile: Literal["p50", "p10", "p90"] = Field("p50", description=(
        "PV forecast quantile the plan dispatches against (p10: cautious)"))

    def solve_options(self, method: Literal["auto", "milp"] | None = None) -> SolveOptions:
        return super().solve_options(method or self.method)


class ControlChoices(Options):
    """How the closed loop re-plans (:mod:`vpp.control`): in the simulation (``--control
    mpc``) and in live operation alike."""

    horizon_hours: float = Field(24.0, ge=24, le=48, description=(
        "Horizon of every closed-loop re-plan [h]"))
    peak_z: float = Field(1.0, ge=0, le=4, description=(
        "Forecast-error standard deviations the closed loop's peak margin provisions for [-]"))
    hold_value_yuan_per_kwh_h: float = Field(4e-5, ge=0, le=0.01, description=(
        "Value of energy held in the battery in closed-loop re-plans [yuan/(kWh*h)]: a "
        "tie-break that keeps energy for a load above its forecast; 0: money alone"),
        json_schema_extra={"cli": "--hold-value"})


class SimulationOptions(SolverChoices, ControlChoices):
    """A simulation run's choices (CLI ``vpp simulate``, API ``POST /v1/simulations``)."""

    start: SupportedDate = Field(description="First simulated day (local)")
    months: int = Field(24, ge=1, le=MAX_MONTHS, description="Calendar months to simulate")
    days: int | None = Field(None, ge=1, le=MAX_SIM_DAYS, description=(
        "Simulate this many days instead of whole months"))
    tariff_policy: str = Field("in-force", min_length=1, max_length=100,
                               pattern=r"^[A-Za-z0-9_.\-]+$", description=(
        "in-force: the tariff version in force each day; or a version name applied "
        "throughout (e.g. su-fagaijiage-2023-555; 2025 and 2023 are short for the shipped "
        "426号 and 555号)"))
    subsidy_rate_yuan_per_kwh: float | None = Field(None, ge=0, description=(
        "Subsidy per kWh discharged [yuan/kWh], at most the policy's maximum; default the "
        "policy's rate"), json_schema_extra={"cli": "--subsidy-rate",
                                             "cli_range": "[0, the policy's maximum]"})
    subsidy_aware: bool = Field(True, description=(
        "Plans count the subsidy (it is paid on realised discharge either way)"),
        json_schema_extra={"cli": "--subsidy-blind", "invert": True, "cli_help": (
            "Plans leave the subsidy out of their objective (it is paid on realised "
            "discharge either way)")})
    foresight: Literal["forecast", "perfect"] = Field("forecast", description=(
        "Plan on forecasts, or on the actual PV and load"))
    control: Literal["mpc", "day-ahead"] = Field("mpc", description=(
        "mpc: re-plan from the measured state through the day (vpp/control.py); "
        "day-ahead: one plan a day, followed with the real-time rule"))
    replan_minutes: int = Field(60, ge=15, le=60, multiple_of=15, description=(
        "Re-plan cadence of mpc control [min]"))
    replan_deviation_frac: float = Field(0.05, gt=0, le=1, description=(
        "Re-plan early when the measured net load strays from the plan by more than this "
        "share of the site's peak load [-]"))
    compare_perfect: bool = Field(False, description=(
        "Also cost every day with perfect foresight from the same morning state"))
    compare_blind: bool = Field(False, description=(
        "Also plan every day subsidy-blind from the same morning state: the discharge that "
        "exists only because of the subsidy"))
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed of every random stream")
    mip_rel_gap: float = Field(5e-3, ge=0, le=0.05, description=(
        "Certified relative gap of every plan [-], against the money at stake"),
        json_schema_extra={"cli": "--gap"})
    time_limit_s: float = Field(10.0, gt=0, le=3600, description=(
        "Time budget of each day's solve [s]; a plan stopped by it is kept and counted"),
        json_schema_extra={"cli": "--time-limit"})
    emission_factor_t_per_mwh: float = Field(0.5703, ge=0, le=2, description=(
        "Grid emission factor [tCO2/MWh]"), json_schema_extra={"cli": "--emission-factor"})

    def describe(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def last_day(self) -> dt.date:
        """The period's last day: ``days`` days, or ``months`` calendar months, from
        ``start`` (as :func:`forecasts.synthetic.period_index` counts them)."""
        if self.days is not None:
            return self.start + dt.timedelta(days=self.days - 1)
        month = self.start.month - 1 + self.months
        year, month = self.start.year + month // 12, month % 12 + 1
        day = min(self.start.day, calendar.monthrange(year, month)[1])
        return dt.date(year, month, day) - dt.timedelta(days=1)

    @model_validator(mode="after")
    def _period_supported(self) -> SimulationOptions:
        last = self.last_day()
        if last > DATE_MAX:
            raise ValueError(f"the simulated period ends on {last}, after {DATE_MAX}: every "
                             f"day must lie from {DATE_MIN} to {DATE_MAX}")
        return self


class OperateOptions(SolverChoices, ControlChoices):
    """Live operation's choices (CLI ``vpp operate``, the service's scheduler): one control
    step re-plans from the stored measurements (:mod:`vpp.operate`)."""

    cadence_minutes: int = Field(15, ge=15, le=60, multiple_of=15, description=(
        "Time between control steps with --loop and in the service [min]"),
        json_schema_extra={"cli": "--cadence"})
    subsidy_aware: bool = Field(True, description=(
        "Re-plans count the subsidy (it is paid on metered discharge either way)"),
        json_schema_extra={"cli": "--subsidy-blind", "invert": True, "cli_help": (
            "Re-plans leave the subsidy out of their objective (it is paid on metered "
            "discharge either way)")})
    max_age_minutes: float = Field(60.0, gt=0, le=1440, description=(
        "Measurements older than this are stale: the step warns (the service's scheduler "
        "skips the site) [min]"))
    mip_rel_gap: float = Field(5e-3, ge=0, le=0.05, description=(
        "Certified relative gap of every re-plan [-], against the money at stake"),
        json_schema_extra={"cli": "--gap"})
    time_limit_s: float = Field(10.0, gt=0, le=3600, description=(
        "Time budget of each re-plan's solve [s]"), json_schema_extra={"cli": "--time-limit"})


class FinanceChoices(Options):
    """Storage finance overrides of a simulation report (default: the finance file's)."""

    capex_yuan_per_wh: float | None = Field(None, gt=0, le=5, description=(
        "Storage capex [yuan/Wh]"))
    life_years: int | None = Field(None, ge=1, le=30, description="Storage life [years]")
    discount_rate: float | None = Field(None, ge=0, le=0.5, description="Discount rate [-]")


def with_policy(model: type[M], max_subsidy_rate_yuan_per_kwh: float) -> type[M]:
    """``model`` with its subsidy rate capped at the policy's maximum [yuan/kWh]."""
    field = model.model_fields.get("subsidy_rate_yuan_per_kwh")
    if field is None:
        return model
    extra = dict(field.json_schema_extra or {})
    capped = Field(None, ge=0, le=max_subsidy_rate_yuan_per_kwh,
                   description=field.description, json_schema_extra=extra)
    derived = create_model(model.__name__, __base__=model, __module__=model.__module__,
                           subsidy_rate_yuan_per_kwh=(float | None, capped))
    derived.__options_base__ = getattr(model, "__options_base__", model)
    return derived


def cli_name(name: str, model: type[BaseModel]) -> str:
    """The CLI option of field ``name`` (``--gap`` for ``mip_rel_gap``)."""
    extra = model.model_fields[name].json_schema_extra or {}
    return str(extra.get("cli") or "--" + name.replace("_", "-"))


def parse(model: type[M], values: dict[str, Any], context: str,
          names: Callable[[str], str] | None = None) -> M:
    """``model`` from ``values``; one :class:`InvalidInputError` names every bad field (as
    ``names(field)`` calls it, e.g. its CLI option) with the value and the allowed range."""
    try:
        parsed = model.model_validate(values)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            field = ".".join(str(x) for x in e["loc"])
            if not field:  # across fields (a model's own rule): its message alone
                problems.append(str(e["msg"]).removeprefix("Value error, "))
                continue
            shown = names(field) if names and field in model.model_fields else field
            value = e.get("input")
            value = value.item() if hasattr(value, "item") and hasattr(value, "dtype") \
                else value  # a numpy scalar reads as its number, not np.float64(...)
            given = ("" if isinstance(value, dict | list) or e["type"] == "missing"
                     else f"={value}" if names and isinstance(value, str) else f"={value!r}")
            problems.append(f"{shown}{given}: {e['msg']}{_range(model, field)}")
        raise InvalidInputError(problems, context) from None
    base = getattr(model, "__options_base__", model)
    # the schema's own class (a policy-capped subclass does not pickle to worker processes)
    return parsed if base is model else base.model_validate(parsed.model_dump())


def _range(model: type[BaseModel], field: str) -> str:
    f = model.model_fields.get(field)
    text = range_text(f.metadata) if f is not None else ""
    return f"; allowed range {text}" if text else ""


def range_text(metadata: list[Any]) -> str:
    """``[0, 0.05]``-style text of a field's bounds, or ''."""
    lo = hi = None
    lo_open = hi_open = False
    for m in metadata:
        if isinstance(m, at.Ge):
            lo = m.ge
        elif isinstance(m, at.Gt):
            lo, lo_open = m.gt, True
        elif isinstance(m, at.Le):
            hi = m.le
        elif isinstance(m, at.Lt):
            hi, hi_open = m.lt, True
    if lo is None and hi is None:
        return ""
    return (f"{'(' if lo_open or lo is None else '['}{'-inf' if lo is None else f'{lo:g}'}, "
            f"{'inf' if hi is None else f'{hi:g}'}{')' if hi_open or hi is None else ']'}")


def cli_options(model: type[BaseModel], exclude: tuple[str, ...] = ()) -> Callable:
    """A decorator adding one click option per field of ``model`` (but ``exclude``): name
    from the field's ``cli`` entry or its own name, help from its description, range and
    default. Values arrive as text and are checked together by :func:`cli_values` and
    :func:`parse`, so every bad option is named at once."""
    import click

    def decorate(fn: Callable) -> Callable:
        for name in reversed(list(model.model_fields)):
            if name in exclude:
                continue
            f = model.model_fields[name]
            extra = f.json_schema_extra or {}
            flag = cli_name(name, model)
            text = f.description or ""
            if f.annotation is bool:
                fn = click.option(flag, name, is_flag=True, default=False,
                                  help=str(extra.get("cli_help") or text))(fn)
                continue
            rng = str(extra.get("cli_range") or range_text(f.metadata))
            choices = getattr(f.annotation, "__args__", None)
            if choices and all(isinstance(c, str) for c in choices):
                fn = click.option(flag, name, type=click.Choice(list(choices)), default=None,
                                  help=f"{text}. Default: {f.default}.")(fn)
                continue
            default = (f" Default: {extra['cli_default']}." if extra.get("cli_default")
                       else "" if f.default is None
                       else f" Default: {f.default:g}." if isinstance(f.default, int | float)
                       else f" Default: {f.default}.")
            fn = click.option(flag, name, type=str, default=None,
                              metavar="NUMBER" if rng else "TEXT",
                              help=f"{text}{'; allowed ' + rng if rng else ''}.{default}")(fn)
        return fn

    return decorate


def cli_values(model: type[BaseModel], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The given options of ``model`` from a command's keyword arguments (popped), ready for
    :func:`parse`: absent options left to the model's default, inverted flags turned."""
    out = {}
    for name, f in model.model_fields.items():
        if name not in kwargs:
            continue
        v = kwargs.pop(name)
        extra = f.json_schema_extra or {}
        if f.annotation is bool:
            if v:
                out[name] = not f.default if extra.get("invert") else True
            continue
        if v is not None:
            out[name] = v
    return out
