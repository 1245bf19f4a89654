"""Forms derived from the option schemas of :mod:`vpp.options`, as the API's request schemas.

:func:`option_fields` turns each field of a pydantic model into an input (number with the
field's bounds, checkbox, choice, text) with its localised label and help, its unit and
its allowed range; :func:`parse_form` reads the submitted text back through the same model
and names every bad field, in the user's language, with the value and the allowed range.
No field, range or default is written here: a new option appears in the form by itself
(its label must exist in both catalogues, ``tests/test_i18n.py``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Any

import annotated_types as at
from pydantic import BaseModel, ValidationError

from models.errors import InvalidInputError
from vpp.i18n import Translator
from vpp.options import DATE_MAX, DATE_MIN, range_text

_UNIT = re.compile(r"\s*\[([^\]]+)\]")
_BAD_TEXT = re.compile("[\ud800-\udfff\x00]")


@dataclass
class FieldView:
    """One input of a form."""

    name: str
    label: str
    help: str
    kind: str  # number, checkbox, select, text, date
    unit: str = ""
    value: Any = None
    default: Any = None
    required: bool = False
    min: float | None = None
    max: float | None = None
    step: str = "any"
    allowed: str = ""
    choices: list[tuple[str, str]] = field(default_factory=list)
    error: str = ""


def _bounds(metadata: list[Any]) -> tuple[float | None, float | None, float | None]:
    lo = hi = step = None
    for m in metadata:
        if isinstance(m, at.Ge | at.Gt):
            lo = m.ge if isinstance(m, at.Ge) else m.gt
        elif isinstance(m, at.Le | at.Lt):
            hi = m.le if isinstance(m, at.Le) else m.lt
        elif isinstance(m, at.MultipleOf):
            step = m.multiple_of
    return lo, hi, step


def _base_type(annotation: Any) -> Any:
    args = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
    return args[0] if len(args) == 1 and annotation is not bool else annotation


def unit_of(description: str | None) -> str:
    """The unit a description gives in brackets (``[kW]``), '' for ``[-]`` or none."""
    m = _UNIT.search(description or "")
    return "" if m is None or m.group(1) == "-" else m.group(1)


def option_fields(model: type[BaseModel], tr: Translator, values: dict[str, Any] | None = None,
                  errors: dict[str, str] | None = None, exclude: tuple[str, ...] = (),
                  words: dict[str, str] | None = None) -> list[FieldView]:
    """The inputs of ``model``'s fields (but ``exclude``), filled with ``values`` (what the
    user sent) or the defaults, with ``errors`` by field. Labels and Chinese help are the
    catalogue's ``option.<name>.*``, or ``option.<words[name]>.*`` where a field means
    something else in this form (a simulation's ``days``)."""
    values = values or {}
    errors = errors or {}
    out = []
    for name, f in model.model_fields.items():
        if name in exclude:
            continue
        desc = f.description or ""
        unit = unit_of(desc)
        key = (words or {}).get(name, name)
        help_text = (_UNIT.sub("", desc).strip() if tr.lang == "en" and desc
                     else tr.t(f"option.{key}.help"))
        # a default that comes from the site's stored state (``cli_default``) is left blank:
        # an empty input means "the stored state", a pre-filled number would override it
        extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
        default = None if f.is_required() or "cli_default" in extra else f.default
        view = FieldView(name=name, label=tr.t(f"option.{key}.label"), help=help_text,
                         kind="text", unit=tr.unit(unit) if unit else "",
                         default=default, required=f.is_required(),
                         value=values.get(name, default), error=errors.get(name, ""))
        base = _base_type(f.annotation)
        choices = getattr(base, "__args__", None)
        if base is bool:
            view.kind = "checkbox"
            view.value = bool(values[name]) if name in values else bool(default)
        elif choices and all(isinstance(c, str) for c in choices):
            view.kind = "select"
            view.choices = [(c, tr.t(f"choice.{c}") if tr.has(f"choice.{c}") else c)
                            for c in choices]
        elif base in (int, float):
            view.kind = "number"
            lo, hi, step = _bounds(f.metadata)
            view.min, view.max = lo, hi
            view.step = str(step) if step else ("1" if base is int else "any")
            view.allowed = range_text(f.metadata)
        elif base is dt.date:
            view.kind = "date"
        out.append(view)
    return out


def _message(e: dict[str, Any], model: type[BaseModel], tr: Translator) -> str:
    name = str(e["loc"][0]) if e["loc"] else ""
    f = model.model_fields.get(name)
    kind = e.get("type", "")
    if f is not None:
        rng = range_text(f.metadata)
        unit = unit_of(f.description)
        allowed = f"{rng} {tr.unit(unit)}".strip() if rng else ""
        choices = getattr(_base_type(f.annotation), "__args__", None)
        if kind == "missing":
            return tr.t("form.required")
        if kind in ("float_parsing", "int_parsing", "int_from_float", "float_type",
                    "int_type", "finite_number"):
            whole = _base_type(f.annotation) is int
            return tr.t("form.not_an_integer" if whole else "form.not_a_number") + (
                f" {tr.t('form.allowed', allowed=allowed)}" if allowed else "")
        if allowed and kind in ("greater_than", "greater_than_equal", "less_than",
                                "less_than_equal", "multiple_of"):
            return tr.t("form.out_of_range", allowed=allowed)
        if kind == "literal_error" and choices:
            return tr.t("form.choose", allowed=", ".join(map(str, choices)))
        if _base_type(f.annotation) is dt.date:
            return tr.t("form.bad_date", first=DATE_MIN.isoformat(), last=DATE_MAX.isoformat())
    return tr.t("form.invalid", message=str(e.get("msg", "")))


#: Key of :func:`parse_form`'s errors for a rule across fields (listed, not by a field).
FORM_RULE = "form"


def parse_form(model: type[BaseModel], form: dict[str, str], tr: Translator,
               extra: dict[str, Any] | None = None) -> tuple[BaseModel | None, dict[str, str]]:
    """``model`` from a submitted form (text values; an empty input means the default, an
    absent checkbox ``False``) and ``extra`` values; or None and the localised message of
    every bad field, by field name."""
    values: dict[str, Any] = dict(extra or {})
    errors: dict[str, str] = {}
    for name, f in model.model_fields.items():
        if name in values:
            continue
        base = _base_type(f.annotation)
        if base is bool:
            values[name] = name in form
            continue
        text = str(form.get(name, "")).strip()
        if _BAD_TEXT.search(text) or len(text) > 200:
            errors[name] = tr.t("form.bad_text")
            continue
        if text == "":
            continue
        if base in (int, float):
            try:
                number = float(text)
            except ValueError:
                values[name] = text  # the model names it
                continue
            if not math.isfinite(number):
                errors[name] = tr.t("form.not_a_number")
                continue
            values[name] = int(number) if base is int and number.is_integer() else (
                number if base is float else text)
        else:
            values[name] = text
    try:
        parsed = model.model_validate(values)
    except ValidationError as exc:
        for e in exc.errors():
            if not e["loc"]:  # a rule across fields: its own message, under FORM_RULE
                errors.setdefault(FORM_RULE, str(e["msg"]).removeprefix("Value error, "))
                continue
            errors.setdefault(str(e["loc"][0]), _message(e, model, tr))
        return None, errors
    if errors:
        return None, errors
    return parsed, {}


def validation_problems(exc: ValidationError, prefix: str = "") -> list[str]:
    """A request model's errors, one line each: ``field: message``, or the message alone
    for a rule across fields (no leading colon, no pydantic "Value error, ")."""
    out = []
    for e in exc.errors():
        loc = ".".join(map(str, e["loc"]))
        msg = str(e["msg"]).removeprefix("Value error, ")
        out.append(f"{prefix}{loc}: {msg}" if loc else msg)
    return out


def problems_text(exc: InvalidInputError) -> list[str]:
    """The rule violations of an :class:`InvalidInputError` (rules across fields, the
    solver's checks), one line each."""
    return [str(p) for p in exc.problems] or [str(exc)]
