"""Timestamps of CSV files: one set of accepted column names, local times made explicit.

Every CSV reader of :mod:`forecasts` (weather, measured PV power, meter load) finds its time
column with :func:`timestamp_column` and parses it with :func:`parse_times`, so the same
headers and the same rules hold everywhere:

- accepted names (case-insensitive): :data:`TIMESTAMP_NAMES`;
- ISO 8601 text; a value with a UTC offset is converted to the zone ``tz``, a value without
  one is local time in ``tz``;
- in a zone with daylight saving time a local time can occur twice (the hour repeated when
  clocks go back: *ambiguous*) or not at all (the hour skipped when they go forward:
  *nonexistent*). Such rows are an error naming the file, the column and the first row, unless
  ``ambiguous`` / ``nonexistent`` say what to do with them (:data:`AMBIGUOUS`,
  :data:`NONEXISTENT`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

#: Header spellings of the time column, in order of preference.
TIMESTAMP_NAMES = ("timestamp", "time", "datetime", "date_time", "measured_on", "ts")
#: What to do with local times that occur twice: raise; take the earlier (still daylight
#: saving) or later (standard time) occurrence; infer from the order of the rows (a
#: regular series that runs through the repeated hour); drop the rows.
Ambiguous = Literal["raise", "earlier", "later", "infer", "drop"]
AMBIGUOUS: tuple[str, ...] = ("raise", "earlier", "later", "infer", "drop")
#: What to do with local times that do not exist: raise; move them forward or backward to
#: the nearest existing time; drop the rows.
Nonexistent = Literal["raise", "shift_forward", "shift_backward", "drop"]
NONEXISTENT: tuple[str, ...] = ("raise", "shift_forward", "shift_backward", "drop")


def timestamp_column(columns: Sequence[str], what: str) -> str:
    """The time column of a CSV: the first of :data:`TIMESTAMP_NAMES` present (any case).

    Raises
    ------
    ValueError
        Naming ``what`` (the file), the accepted names and the columns found.
    """
    lower = {str(c).strip().lower(): c for c in columns}
    for name in TIMESTAMP_NAMES:
        if name in lower:
            return lower[name]
    raise ValueError(f"{what}: no time column; accepted names {list(TIMESTAMP_NAMES)}, "
                     f"found {list(columns)}")


def _row(i: int) -> str:
    """A 0-based data row as the line of the CSV file (header on line 1)."""
    return f"line {i + 2}"


def rows_text(rows: Sequence[int] | np.ndarray, shown: int = 5) -> str:
    """0-based data rows as their lines of the CSV file (header on line 1): ``line 7``,
    ``lines 7, 9, 12, 13, 20 and 4 more``."""
    at = np.asarray(rows, dtype=np.int64) + 2
    more = f" and {len(at) - shown} more" if len(at) > shown else ""
    return f"line{'s' if len(at) > 1 else ''} {', '.join(map(str, at[:shown]))}{more}"


def not_iso(raw: pd.Series, what: str, column: str) -> str:
    """The message for a time column pandas cannot read as ISO 8601: how many values fail,
    the first one and the lines they are on."""
    bad = np.zeros(len(raw), dtype=bool)
    for i, v in enumerate(raw):
        try:
            pd.to_datetime(v, format="ISO8601")
        except (ValueError, TypeError):
            bad[i] = True
    if not bad.any():  # each value reads alone, not together
        return (f"{what}: column '{column}' is not one ISO 8601 time column; give every "
                "time in one form, e.g. 2026-07-01T00:15:00+08:00")
    i = int(np.flatnonzero(bad)[0])
    return (f"{what}: column '{column}': {int(bad.sum())} value(s) are not ISO 8601 times "
            f"(e.g. 2026-07-01 00:15 or 2026-07-01T00:15:00+08:00), first "
            f"{str(raw.iloc[i])!r} ({rows_text(np.flatnonzero(bad))})")


def parse_times(
    values: pd.Series | Sequence[str], tz: str, what: str, column: str = "timestamp",
    ambiguous: Ambiguous = "raise", nonexistent: Nonexistent = "raise",
) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Parse ISO 8601 times into a ``tz``-aware index.

    Parameters
    ----------
    values : the column's values (text or datetimes)
    tz : IANA zone of local times, and of the result
    what : the file, for messages
    column : the column's name, for messages
    ambiguous, nonexistent : see :data:`AMBIGUOUS` and :data:`NONEXISTENT`

    Returns
    -------
    (index, keep) : the parsed times of the kept rows, and a boolean mask of the kept rows
    (``False`` only for rows dropped by ``"drop"``).

    Raises
    ------
    ValueError
        On text that is not ISO 8601, and on ambiguous or nonexistent local times under
        ``"raise"``, naming ``what``, ``column``, the first bad row (its line in the file),
        its value and the options.
    """
    if ambiguous not in AMBIGUOUS:
        raise ValueError(f"ambiguous must be one of {list(AMBIGUOUS)}, got {ambiguous!r}")
    if nonexistent not in NONEXISTENT:
        raise ValueError(f"nonexistent must be one of {list(NONEXISTENT)}, got {nonexistent!r}")
    raw = pd.Series(values).reset_index(drop=True)
    try:
        parsed = pd.to_datetime(raw, format="ISO8601")
    except (ValueError, TypeError) as exc:
        if "timezone" in str(exc).lower() or "offset" in str(exc).lower():
            text = raw.dropna().astype(str).str.strip()
            naive = ~text.str.contains(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$", regex=True)
            if naive.any() and not naive.all():  # UTC would be a guess for the naive ones
                i = int(naive.to_numpy().nonzero()[0][0])
                raise ValueError(
                    f"{what}: column '{column}' mixes times with and without a UTC offset "
                    f"(first without: {text.iloc[i]!r} on {_row(int(text.index[i]))}); give "
                    "every time with its offset (e.g. 2026-07-01T00:15:00+08:00) or none"
                ) from None
            try:  # offsets that change along the file: each value is an instant
                parsed = pd.to_datetime(raw, format="ISO8601", utc=True)
            except (ValueError, TypeError):
                raise ValueError(not_iso(raw, what, column)) from None
        else:
            raise ValueError(not_iso(raw, what, column)) from None
    idx = pd.DatetimeIndex(parsed)
    n = len(idx)
    keep = np.ones(n, dtype=bool)
    if idx.tz is not None:
        return idx.tz_convert(tz), keep
    # naive local times: find the ambiguous and the nonexistent ones first
    amb = np.asarray(idx.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward").isna())
    amb &= ~np.asarray(idx.isna())
    gap = np.asarray(idx.tz_localize(tz, ambiguous=np.ones(n, dtype=bool),
                                     nonexistent="NaT").isna()) & ~np.asarray(idx.isna())
    if amb.any() and ambiguous == "raise":
        i = int(np.flatnonzero(amb)[0])
        raise ValueError(
            f"{what}: column '{column}': {int(amb.sum())} local time(s) occur twice in {tz} "
            f"(clocks go back), first {raw.iloc[i]!r} on {_row(i)}; give the times with a UTC "
            f"offset, or choose how to read them: ambiguous = {' | '.join(AMBIGUOUS[1:])} "
            "(CLI: --ambiguous)")
    if gap.any() and nonexistent == "raise":
        i = int(np.flatnonzero(gap)[0])
        raise ValueError(
            f"{what}: column '{column}': {int(gap.sum())} local time(s) do not exist in {tz} "
            f"(clocks go forward), first {raw.iloc[i]!r} on {_row(i)}; give the times with a "
            f"UTC offset, or choose how to read them: nonexistent = "
            f"{' | '.join(NONEXISTENT[1:])} (CLI: --nonexistent)")
    if ambiguous == "infer" and amb.any():
        try:
            amb_arg: str | np.ndarray = "infer"
            idx.tz_localize(tz, ambiguous="infer", nonexistent="shift_forward")
        except ValueError:
            i = int(np.flatnonzero(amb)[0])
            raise ValueError(
                f"{what}: column '{column}': cannot infer which occurrence the repeated local "
                f"times are (first {raw.iloc[i]!r} on {_row(i)}): the rows must run through "
                "the repeated hour in order; choose ambiguous = earlier | later | drop") from None
    else:
        amb_arg = np.full(n, ambiguous != "later", dtype=bool)
    nonex_arg = "NaT" if nonexistent in ("drop", "raise") else nonexistent
    if ambiguous == "drop":
        keep &= ~amb
    if nonexistent == "drop":
        keep &= ~gap
    local = idx.tz_localize(tz, ambiguous=amb_arg, nonexistent=nonex_arg)
    return local[keep], keep
