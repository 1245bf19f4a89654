"""Clear-sky PV: the ModelChain result against a step-by-step computation, night, clipping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pvlib
import pytest

from forecasts.pv import ArraySpec, SystemSpec, clearsky_pv_kw, pv_ac_kw

LAT, LON, ALT = 31.87, 119.95, 5.0


def system(dc=100.0, ac=100.0, tilt=0.0, losses=14.0) -> SystemSpec:
    return SystemSpec(LAT, LON, ALT, (ArraySpec("roof", dc, ac, tilt, 180.0, losses),))


def day(date="2026-06-21") -> pd.DatetimeIndex:
    return pd.date_range(pd.Timestamp(date).tz_localize("Asia/Shanghai"), periods=96,
                         freq="15min")


def test_flat_array_at_noon_matches_hand_chain():
    """A horizontal array sees POA = GHI (no ground reflection, diffuse = DHI); beam is scaled
    by the physical IAM, the cell temperature follows SAPM close-mount glass/glass at 25 °C
    air and 1 m/s, DC = 100 kWp x (1 - 14 %) x POA_eff / 1000 x (1 - 0.0037 (Tc - 25)), and the
    PVWatts inverter turns it into AC. Evaluated at the midpoint of 11:45-12:00."""
    idx = day()
    got = clearsky_pv_kw(system(dc=100.0, ac=1000.0), idx).iloc[47]
    t = pd.DatetimeIndex([idx[47] + pd.Timedelta(minutes=7.5)])
    loc = pvlib.location.Location(LAT, LON, "Asia/Shanghai", ALT)
    cs = loc.get_clearsky(t, model="ineichen")
    sp = loc.get_solarposition(t)
    zen = float(sp["apparent_zenith"].iloc[0])
    beam = float(cs["dni"].iloc[0]) * np.cos(np.radians(zen))
    iam = float(pvlib.iam.physical(zen))
    poa = float(cs["ghi"].iloc[0])
    poa_eff = beam * iam + float(cs["dhi"].iloc[0])
    par = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["close_mount_glass_glass"]
    tc = float(pvlib.temperature.sapm_cell(poa, 25.0, 1.0, **par))
    dc_w = 100e3 * 0.86 * poa_eff / 1000 * (1 - 0.0037 * (tc - 25))
    ac_w = float(pvlib.inverter.pvwatts(dc_w, 1000e3 / 0.96, 0.96))
    assert got == pytest.approx(ac_w / 1000, rel=2e-3)
    # clear-sky GHI ≈ 850 W/m² (Linke turbidity of the Yangtze delta), minus 14 % losses,
    # ≈ 15 % heat loss of a close-mounted module at ≈ 67 °C, 4 % inverter: ≈ 60 kW
    assert 55 < got < 65


def test_night_is_zero_and_ac_is_clipped():
    pv = clearsky_pv_kw(system(dc=200.0, ac=80.0, tilt=20.0), day())
    assert pv.iloc[:16].max() == 0.0 and pv.iloc[84:].max() == 0.0  # before 04:00, after 21:00
    assert pv.max() == pytest.approx(80.0, rel=1e-6)  # 200 kWp (≈120 kW DC at noon) on 80 kW clips


def test_daily_clear_sky_yield_is_plausible():
    """A clear June day in Changzhou yields 4.5-6 kWh per kWp on a 20° south roof (the
    annual mean of ≈1,025 kWh/kWp is 2.8 kWh/kWp per day, cloudy days included)."""
    kwh_per_kwp = clearsky_pv_kw(system(dc=1.0, ac=1.0, tilt=20.0), day()).sum() * 0.25
    assert 4.5 < kwh_per_kwp < 6.0


def test_missing_weather_columns_named():
    w = pd.DataFrame({"ghi": [0.0]}, index=day()[:1])
    with pytest.raises(ValueError, match=r"missing columns \['dhi', 'dni', 'temp_air', "
                                         r"'wind_speed'\]; found \['ghi'\]"):
        pv_ac_kw(system(), w)


@pytest.mark.parametrize("transposition", ["haydavies", "perez", "isotropic"])
def test_array_chain_is_pvlib_modelchain(transposition):
    """The array chain (pvlib functions on arrays, sun computed once) gives what pvlib's
    ModelChain gives for the same array and weather, within 0.05 % of the array's peak."""
    from pvlib.modelchain import ModelChain
    from pvlib.pvsystem import PVSystem
    from pvlib.temperature import TEMPERATURE_MODEL_PARAMETERS

    from forecasts.pv import array_conditions, clearsky_weather

    spec = system(dc=100.0, ac=1000.0, tilt=25.0)
    arr = spec.arrays[0]
    idx = day("2026-03-20")
    w = clearsky_weather(spec, idx) * [0.6, 0.5, 1.4, 1.0, 1.0]  # some diffuse weather
    w["temp_air"] = np.linspace(5, 25, len(idx))
    mine = array_conditions(spec.location(), arr, w, transposition)
    timed = w.copy()
    timed.index = idx + pd.Timedelta(minutes=7.5)
    pvs = PVSystem(surface_tilt=25.0, surface_azimuth=180.0,
                   module_parameters={"pdc0": 1000.0, "gamma_pdc": -0.0037},
                   inverter_parameters={"pdc0": 2000.0},
                   temperature_model_parameters=TEMPERATURE_MODEL_PARAMETERS["sapm"][
                       "close_mount_glass_glass"])
    mc = ModelChain(pvs, spec.location(), aoi_model="physical", spectral_model="no_loss",
                    transposition_model=transposition)
    mc.run_model(timed)
    peak = mc.results.effective_irradiance.max()
    np.testing.assert_allclose(mine["effective_irradiance"],
                               mc.results.effective_irradiance.fillna(0).to_numpy(),
                               atol=5e-4 * peak)
    np.testing.assert_allclose(mine["cell_temperature"],
                               mc.results.cell_temperature.fillna(0).to_numpy(), atol=0.02)
