"""Forecast uncertainty: P10 / P90 around the P50 PV forecast.

The error of a PV forecast scales with what the sun could give, so errors are measured in
units of the *clear-sky* AC power of the same system (``u = (measured - P50) / P_clear``) and
their 10th and 90th percentiles are kept per bin of the forecast's clear-sky index
``kc = GHI / GHI_clear``: a clear forecast is tight above and loose below, a broken-cloud
forecast loose both ways. Then ``P10 = P50 + q10(kc) P_clear`` and ``P90 = P50 + q90(kc)
P_clear``, bounded by what is physically possible: ``0 <= P10 <= P50 <= P90 <= P_clear``,
where ``P_clear`` is the system's clear-sky AC power (already within its inverter rating).

Band tables are fitted from a site's history (:func:`fit_bands`) or read from
``data/pv-bands.toml`` (defaults per weather source, with their provenance).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_FILE = Path(__file__).with_name("data") / "pv-bands.toml"
#: Clear-sky-index bin edges used when fitting.
KC_EDGES = (0.0, 0.4, 0.8, 9.0)  # overcast, broken cloud, clear
MIN_PER_BIN = 40  # fewer samples than this: the bin takes the pooled quantiles
#: Allowed ratio of the P90 envelope to the clear-sky AC power [-].
KMAX_RANGE = (1.0, 1.5)
#: Quantile of measured / clear-sky AC power (sun well up) that sets ``kmax`` [-].
KMAX_QUANTILE = 0.99


def _bins(edges: tuple[float, ...], kc: np.ndarray) -> np.ndarray:
    """Bin index of each clear-sky index; values beyond the edges go to the end bins."""
    return np.clip(np.searchsorted(edges, kc, side="right") - 1, 0, len(edges) - 2)


@dataclass(frozen=True)
class BandModel:
    """Quantiles of the clear-sky-normalised error [-] per clear-sky-index bin.

    ``edges`` has one more entry than ``q10`` and ``q90``; bin ``i`` is
    ``edges[i] <= kc < edges[i + 1]``. ``kmax`` [-] is the highest ratio of measured to
    clear-sky AC power the system shows (cloud enhancement, a clear-sky model that is low for
    the site): P90 stays below ``kmax`` times the clear-sky AC power and below the AC rating.

    ``reference_ratio`` [-], when set, is the ratio P50 / clear-sky AC power the table was
    fitted at (a climatology's one ratio for the whole fit); the quantiles then scale with
    each forecast's own ratio, ``P10 = P50 (1 + q10 / reference_ratio)``: a climatological
    month cloudier than the fit's spreads less in kW, instead of a P10 clipped to 0.
    """

    edges: tuple[float, ...]
    q10: tuple[float, ...]
    q90: tuple[float, ...]
    source: str
    kmax: float = 1.0
    reference_ratio: float | None = None

    def __post_init__(self) -> None:
        n = len(self.edges) - 1
        if n < 1 or len(self.q10) != n or len(self.q90) != n:
            raise ValueError(f"band model: {len(self.edges)} edges need {n} q10 and q90 values")
        if any(a > b for a, b in zip(self.q10, self.q90, strict=True)):
            raise ValueError("band model: every q10 must be <= its q90")
        if list(self.edges) != sorted(self.edges):
            raise ValueError("band model: edges must increase")
        if not KMAX_RANGE[0] <= self.kmax <= KMAX_RANGE[1]:
            raise ValueError(f"band model: kmax={self.kmax:g} outside the allowed "
                             f"{KMAX_RANGE[0]:g}..{KMAX_RANGE[1]:g}")
        if self.reference_ratio is not None and not 0 < self.reference_ratio <= 1.5:
            raise ValueError(f"band model: reference_ratio={self.reference_ratio:g} outside "
                             "the allowed (0, 1.5]")

    def bins(self, kc: np.ndarray) -> np.ndarray:
        return _bins(self.edges, kc)

    def apply(
        self, p50_kw: np.ndarray, clear_kw: np.ndarray, kc: np.ndarray, ac_kw: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """(P10, P90) [kW] around ``p50_kw`` with ``0 <= P10 <= P50 <= P90 <= min(kmax
        clear, ac_kw)`` (``p50_kw`` is expected within that envelope: :func:`bound_p50`);
        zero where the clear-sky power is zero."""
        b = self.bins(np.asarray(kc, dtype=float))
        clear = np.asarray(clear_kw, dtype=float)
        top = np.minimum(self.kmax * clear, ac_kw)
        p50 = np.asarray(p50_kw, dtype=float)
        unit = clear if self.reference_ratio is None else p50 / self.reference_ratio
        p10 = np.clip(p50 + np.asarray(self.q10)[b] * unit, 0.0, p50)
        p90 = np.clip(p50 + np.asarray(self.q90)[b] * unit, p50, np.maximum(top, p50))
        return p10, p90

    def as_dict(self) -> dict:
        d = {"edges": list(self.edges), "q10": [round(v, 4) for v in self.q10],
             "q90": [round(v, 4) for v in self.q90], "kmax": round(self.kmax, 4),
             "source": self.source}
        if self.reference_ratio is not None:
            d["reference_ratio"] = round(self.reference_ratio, 4)
        return d


def bound_p50(p50_kw: np.ndarray, clear_kw: np.ndarray) -> np.ndarray:
    """P50 [kW] no higher than the clear-sky AC power: a 15-minute average above the clear
    sky (a satellite or forecast clear-sky index above 1) is not a power the system gives in
    the mean (measured: 0.80 of the model where the satellite index exceeds 1.1,
    docs/pv-forecast.md)."""
    return np.minimum(np.asarray(p50_kw, dtype=float), np.asarray(clear_kw, dtype=float))


def fit_bands(
    measured_kw: np.ndarray, p50_kw: np.ndarray, clear_kw: np.ndarray, kc: np.ndarray,
    source: str, edges: tuple[float, ...] = KC_EDGES,
) -> BandModel:
    """Empirical 10th/90th percentiles of ``(measured - p50) / clear`` per ``kc`` bin, over
    daylight intervals (clear-sky power above 2 % of its maximum) with a measurement; ``kmax``
    is the :data:`KMAX_QUANTILE` quantile of measured / clear where the clear-sky power is
    above 20 % of its maximum, within :data:`KMAX_RANGE`."""
    m = np.asarray(measured_kw, dtype=float)
    c = np.asarray(clear_kw, dtype=float)
    ok = np.isfinite(m) & (c > 0.02 * np.nanmax(c))
    if ok.sum() < MIN_PER_BIN:
        raise ValueError(f"need at least {MIN_PER_BIN} daylight intervals with measurements to "
                         f"fit forecast bands, got {int(ok.sum())}")
    u = (m[ok] - np.asarray(p50_kw, dtype=float)[ok]) / c[ok]
    b = _bins(edges, np.asarray(kc)[ok])
    pooled = np.quantile(u, [0.1, 0.9])
    q10, q90 = [], []
    for i in range(len(edges) - 1):
        ui = u[b == i]
        lo, hi = np.quantile(ui, [0.1, 0.9]) if len(ui) >= MIN_PER_BIN else pooled
        q10.append(float(lo))
        q90.append(float(hi))
    high = np.isfinite(m) & (c > 0.2 * np.nanmax(c))
    kmax = float(np.quantile(m[high] / c[high], KMAX_QUANTILE)) if high.any() else 1.0
    return BandModel(tuple(edges), tuple(q10), tuple(q90), source,
                     float(np.clip(kmax, *KMAX_RANGE)))


def band_from_dict(d: dict) -> BandModel:
    try:
        ref = d.get("reference_ratio")
        return BandModel(tuple(d["edges"]), tuple(d["q10"]), tuple(d["q90"]), d["source"],
                         float(d.get("kmax", 1.0)), None if ref is None else float(ref))
    except KeyError as exc:
        raise ValueError(f"band model: missing key {exc}") from None


@lru_cache(maxsize=4)
def default_bands(path: str | Path = DEFAULT_FILE) -> dict[str, BandModel]:
    """Default band models by weather kind (``irradiance``, ``ghi``, ``cloud_cover``,
    ``climatology``) from the shipped file."""
    try:
        with open(path, "rb") as fh:
            d = tomllib.load(fh)
    except FileNotFoundError:
        raise ValueError(f"band file {path} does not exist (write one with `vpp pv backtest "
                         "--write-bands FILE`)") from None
    bands = {kind: band_from_dict(v) for kind, v in d.get("bands", {}).items()}
    missing = {"irradiance", "ghi", "cloud_cover", "climatology"} - set(bands)
    if missing:
        raise ValueError(f"band file {path}: no [bands.<kind>] table for {sorted(missing)}")
    return bands


def coverage(measured: pd.Series, p10: pd.Series, p90: pd.Series, daylight: pd.Series) -> float:
    """Share of daylight intervals with a measurement inside [P10, P90] [-]."""
    ok = daylight & measured.notna()
    inside = (measured >= p10 - 1e-9) & (measured <= p90 + 1e-9)
    return float(inside[ok].mean())
