"""P10/P90 bands: physically bounded, kept per weather kind."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasts.bands import BandModel, bound_p50, default_bands, fit_bands
from forecasts.pv import ArraySpec, SystemSpec
from forecasts.pv_forecast import PVModel, forecast_pv
from forecasts.weather import Weather

ROOF = SystemSpec(31.81, 119.97, 5.0, (ArraySpec("roof", 1000.0, 900.0, 5.0, 180.0),))


def test_bounds_by_hand():
    """q10 -0.5, q90 +0.5, kmax 1.1, clear 10 kW: a P50 of 8 gets P10 8 - 5 = 3 and P90
    min(8 + 5, 1.1 x 10) = 11; a P50 of 2 gets P10 max(2 - 5, 0) = 0 and P90 7; an AC rating
    of 10 kW caps P90 at 10."""
    b = BandModel((0.0, 9.0), (-0.5,), (0.5,), "t", kmax=1.1)
    p10, p90 = b.apply(np.array([8.0, 2.0]), np.array([10.0, 10.0]), np.array([0.5, 0.5]),
                       ac_kw=100.0)
    assert list(p10) == [3.0, 0.0] and list(p90) == [11.0, 7.0]
    _, p90 = b.apply(np.array([8.0]), np.array([10.0]), np.array([0.5]), ac_kw=10.0)
    assert list(p90) == [10.0]
    assert list(bound_p50(np.array([12.0, 4.0]), np.array([10.0, 10.0]))) == [10.0, 4.0]
    with pytest.raises(ValueError, match=r"kmax=2 outside the allowed 1\.\.1\.5"):
        BandModel((0.0, 9.0), (-0.5,), (0.5,), "t", kmax=2.0)


def test_fitted_kmax_is_the_99th_percentile_of_measured_over_clear():
    """Measured = clear x 0.5 .. 1.49 (100 even steps): P50 0, clear 10; the 99th percentile
    (linear interpolation) of the ratio is 0.5 + 0.99 x 0.99 = 1.4801."""
    ratio = 0.5 + np.arange(100) / 100.0
    b = fit_bands(10.0 * ratio, np.zeros(100), np.full(100, 10.0), np.full(100, 0.5), "t",
                  edges=(0.0, 9.0))
    assert b.kmax == pytest.approx(1.4801)


def test_cloud_cover_forecast_is_bounded_by_the_clear_sky():
    """A day of 50 % cloud cover on a 1 MWp roof: the shipped cloud-cover table (kmax 1)
    keeps P90 at or below the clear-sky AC power in every interval, and P10 well above zero
    (the old table's P10 was 33 kWh against a P50 of 17,266 kWh). By hand at 12:00: the
    forecast clear-sky index 0.35 + 0.65 x 0.5 = 0.675 falls in the broken-cloud bin."""
    idx = pd.date_range(pd.Timestamp("2026-07-15", tz="Asia/Shanghai"), periods=97,
                        freq="15min")
    w = Weather(pd.DataFrame({"cloud_cover": 50.0, "temp_air": 30.0}, index=idx), "start",
                "cc")
    fc = forecast_pv(PVModel(ROOF), idx[:-1], w)
    assert fc.kind == "cloud_cover"
    f = fc.frame
    day = f["clear_kw"] > 0.02 * f["clear_kw"].max()
    assert (f["p90_kw"][day] <= f["clear_kw"][day] + 1e-9).all()
    assert (f["p10_kw"] <= f["p50_kw"]).all() and (f["p50_kw"] <= f["p90_kw"]).all()
    assert f["p10_kw"].sum() > 0.25 * f["p50_kw"].sum()
    b = default_bands()["cloud_cover"]
    noon = f.loc[pd.Timestamp("2026-07-15 12:00", tz="Asia/Shanghai")]
    assert noon["kc"] == pytest.approx(0.675, abs=0.002)
    assert noon["p10_kw"] == pytest.approx(noon["p50_kw"] + b.q10[1] * noon["clear_kw"])
    assert noon["p90_kw"] == pytest.approx(min(noon["p50_kw"] + b.q90[1] * noon["clear_kw"],
                                               noon["clear_kw"]))


def test_a_models_own_bands_serve_only_their_weather_kind():
    own = BandModel((0.0, 9.0), (-0.01,), (0.01,), "own")
    model = PVModel(ROOF, bands={"cloud_cover": own})
    assert model.band_for("cloud_cover") is own
    assert model.band_for("ghi") is default_bands()["ghi"]


def test_climatology_band_scales_with_the_months_own_p50():
    """The shipped climatology table was fitted where P50 was 0.736 x the clear sky: a month
    whose P50 is 0.55 x the clear sky (Changzhou's plum rains) keeps the same relative band,
    P10 = P50 (1 - 0.5915 / 0.736) = 0.196332 P50 and P90 = P50 (1 + 0.3183 / 0.736) =
    1.432473 P50 below the clear sky, where the absolute form gave P10 = 0.55 - 0.5915 < 0."""

    b = default_bands()["climatology"]
    assert b.reference_ratio == 0.736
    clear = np.array([100.0, 100.0, 100.0, 0.0])
    p50 = np.array([55.0, 73.6, 80.0, 0.0])
    p10, p90 = b.apply(p50, clear, np.zeros(4), ac_kw=1000.0)
    assert p10 == pytest.approx([55 * 0.196332, 73.6 * 0.196332, 80 * 0.196332, 0.0], abs=1e-4)
    # at the fit's own ratio the two forms agree: 73.6 - 59.15 = 14.45 kW
    assert p10[1] == pytest.approx(73.6 - 59.15, abs=1e-3)
    assert p90 == pytest.approx([55 * 1.432473, 100.0, 100.0, 0.0], abs=1e-4)
