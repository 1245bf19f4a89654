"""Shared pieces of the static charts (matplotlib): a CJK font for Chinese labels, the
Agg backend, and colours for many series.

Chinese labels need a font with CJK glyphs; matplotlib's own DejaVu Sans has none and draws
boxes. :func:`chart_language` looks for one (Debian's ``fonts-noto-cjk`` or
``fonts-wqy-zenhei``, or any installed font in :data:`CJK_FONTS`); when there is none, the
Chinese charts are drawn with English labels instead, and the caller is told so (logged, and
said in the report) - never boxes. matplotlib is imported inside the functions.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)

#: Fonts with CJK glyphs, in order of preference (Debian: fonts-noto-cjk, fonts-wqy-zenhei).
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
             "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing CN")


_CJK_FILES = ("notosanscjk", "notoserifcjk", "sourcehansans", "wqy-zenhei", "wqy-microhei",
              "droidsansfallback", "uming")


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The name of an installed font with CJK glyphs, or None."""
    from matplotlib import font_manager

    def known() -> str | None:
        installed = {f.name for f in font_manager.fontManager.ttflist}
        return next((name for name in CJK_FONTS if name in installed), None)

    found = known()
    if found is None:  # installed after matplotlib cached its font list: add the files
        for path in font_manager.findSystemFonts():
            if any(k in path.lower() for k in _CJK_FILES):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError) as exc:
                    log.debug("font %s not usable: %s", path, exc)
        found = known()
    return found


def chart_language(lang: str) -> str:
    """The language charts for ``lang`` can be labelled in: ``zh-CN`` when a CJK font is
    installed (and then made matplotlib's first sans-serif font), else ``en`` with a
    warning."""
    if lang != "zh-CN":
        return "en"
    font = cjk_font()
    if font is None:
        log.warning("no CJK font installed (apt-get install fonts-noto-cjk or "
                    "fonts-wqy-zenhei): Chinese charts are labelled in English")
        return "en"
    import matplotlib

    fonts = list(matplotlib.rcParams["font.sans-serif"])
    matplotlib.rcParams["font.sans-serif"] = [font, *[f for f in fonts if f != font]]
    matplotlib.rcParams["axes.unicode_minus"] = False
    return "zh-CN"


def distinct_colours(n: int) -> list[Any]:
    """``n`` colours that stay distinguishable: tab10, then tab20's lighter shades; more
    than 20 series should be grouped by the caller (e.g. by feeder, or top-N and the rest)."""
    plt = pyplot()
    base = list(plt.cm.tab10.colors) + list(plt.cm.tab20.colors[1::2])
    if n > len(base):
        raise ValueError(f"{n} series cannot get distinct colours: group them first")
    return base[:n]
