"""Languages of what people read: labels from catalogues, numbers, dates and units by locale.

Two languages: Chinese (``zh-CN``, the default: the pilots' users) and English (``en``).
Each has a catalogue, a flat TOML table of ``key = "text"`` per file, in ``vpp/locales``
(the report, the option labels) and in any further folders a caller adds (the dashboard's
own words live in ``service/dashboard/locales``). Every key exists in both languages
(``tests/test_i18n.py``). Numbers and dates go through Babel with the locale's rules; a
quantity is a number with the unit's localised symbol (``1,234 kWh``, ``1,234 元``).

Babel is imported when a :class:`Translator` is made, not with this module.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import tomllib
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LANGS: tuple[str, ...] = ("zh-CN", "en")
DEFAULT_LANG = "zh-CN"
LOCALES = Path(__file__).resolve().parent / "locales"
_BABEL = {"zh-CN": "zh_Hans_CN", "en": "en_US"}


def normalise_lang(value: str | None) -> str:
    """One of :data:`LANGS` for a requested language (``zh``, ``zh-cn``, ``en-GB``...);
    the default for anything else."""
    v = (value or "").strip().lower()
    if v.startswith("en"):
        return "en"
    return DEFAULT_LANG


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = str(v)
    return out


@lru_cache(maxsize=16)
def catalogue(lang: str, folders: tuple[Path, ...] = ()) -> dict[str, str]:
    """Every ``key -> text`` of ``lang`` from :data:`LOCALES` and ``folders`` (later files
    win)."""
    out: dict[str, str] = {}
    for folder in (LOCALES, *folders):
        path = Path(folder) / f"{lang}.toml"
        if path.is_file():
            out.update(_flatten(tomllib.loads(path.read_text(encoding="utf-8"))))
    return out


class Translator:
    """Words, numbers, dates and units of one language.

    ``t("key", name=...)`` is the catalogue's text with ``{name}`` filled in; a key missing
    from the language falls back to English, then to the key itself (logged once).
    """

    def __init__(self, lang: str | None = None, folders: Iterable[Path] = ()) -> None:
        import babel

        self.lang = normalise_lang(lang)
        self.folders = tuple(Path(f) for f in folders)
        self.words = catalogue(self.lang, self.folders)
        self._fallback = catalogue("en", self.folders)
        self.locale = babel.Locale.parse(_BABEL[self.lang])

    @property
    def html_lang(self) -> str:
        """The value of ``<html lang>``."""
        return self.lang

    def t(self, key: str, **values: Any) -> str:
        text = self.words.get(key)
        if text is None:
            text = self._fallback.get(key)
            if text is None:
                log.warning("no text for %r in %s", key, self.lang)
                return key
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in self.words

    # ------------------------------------------------------------------- numbers and units

    def num(self, value: float | int | None, digits: int = 0) -> str:
        """``value`` with the locale's grouping and decimal signs, ``digits`` decimals; a
        dash for None or NaN."""
        from babel.numbers import format_decimal

        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "–"
        pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
        if round(value, digits) == 0:  # no "-0" for a tiny negative
            value = 0
        return format_decimal(value, format=pattern, locale=self.locale)

    def pct(self, frac: float | None, digits: int = 1) -> str:
        """A fraction [-] as a percentage."""
        from babel.numbers import format_percent

        if frac is None or (isinstance(frac, float) and not math.isfinite(frac)):
            return "–"
        pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "") + "%"
        if round(frac * 100, digits) == 0:  # no "-0.0%" for a tiny negative
            frac = 0
        return format_percent(frac, format=pattern, locale=self.locale)

    def unit(self, unit: str) -> str:
        """The localised symbol of ``unit`` (``yuan`` is 元 in Chinese; SI symbols stay)."""
        return self.t(f"unit.{unit}") if self.has(f"unit.{unit}") else unit

    def qty(self, value: float | int | None, unit: str, digits: int = 0) -> str:
        """A number with its unit: ``1,234.5 kWh``, ``2,400 元``."""
        return f"{self.num(value, digits)} {self.unit(unit)}"

    # ------------------------------------------------------------------------------ time

    def date(self, day: dt.date | str | None, form: str = "long") -> str:
        """A calendar day (``2026年7月15日``, ``July 15, 2026``); ``short``: digits."""
        from babel.dates import format_date

        if day is None:
            return "–"
        if isinstance(day, str):
            day = dt.date.fromisoformat(day[:10])
        return format_date(day, format="medium" if form == "short" else form,
                           locale=self.locale)

    def datetime(self, moment: dt.datetime | str | None, tz: str = "Asia/Shanghai") -> str:
        """A moment in local time (Asia/Shanghai by default), to the minute."""
        from babel.dates import format_datetime

        if moment is None:
            return "–"
        if isinstance(moment, str):
            moment = dt.datetime.fromisoformat(moment)
        return format_datetime(moment, format="yyyy-MM-dd HH:mm", tzinfo=_tz(tz),
                               locale=self.locale)

    def duration(self, seconds: float | None) -> str:
        """A span of time to its largest whole unit (``45 min``, ``2 hr``, ``45分钟``); a
        dash for None. Negative spans (a clock a little behind) count as 0."""
        from babel.dates import format_timedelta

        if seconds is None or (isinstance(seconds, float) and not math.isfinite(seconds)):
            return "–"
        return format_timedelta(dt.timedelta(seconds=max(0.0, float(seconds))),
                                threshold=1.5, format="short", locale=self.locale)

    def month(self, year: int, month: int) -> str:
        """A calendar month (``2026年7月``, ``Jul 2026``)."""
        from babel.dates import format_skeleton

        return format_skeleton("yMMM", dt.date(year, month, 1), locale=self.locale)


def _tz(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)
