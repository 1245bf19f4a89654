"""Fitting the simulation's PV forecast-error model from forecasts and measurements."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasts.error_fit import fit_pv_errors, write_error_model
from forecasts.synthetic import DayStreams, ErrorModel, forecast_clearsky_index, load_error_model

IDX = pd.date_range(pd.Timestamp("2025-01-01", tz="Asia/Shanghai"), periods=96 * 730,
                    freq="15min")


def clear() -> pd.Series:
    """A 100 kW half-sine day from 06:00 to 18:00."""
    h = IDX.hour + IDX.minute / 60 + 0.125
    return pd.Series(np.clip(np.sin(np.pi * (h - 6) / 12), 0, None) * 100.0, index=IDX)


def test_recovers_the_numbers_the_simulation_draws_with():
    """Two years of forecasts drawn by the simulation's own generator with daily sigma 0.12,
    daily persistence 0.4, 15-minute sigma 0.07 and persistence 0.9 around a steady clear-sky
    index of 0.7: the fit returns them within their sampling error (sd over 8 seeds of one
    year: 0.008, 0.07, 0.003, 0.008)."""
    truth = ErrorModel(pv_daily_sigma=0.12, pv_daily_persistence=0.4, pv_intraday_sigma=0.07,
                       pv_intraday_persistence=0.9, max_clearsky_index=1.5)
    kc = np.full(len(IDX), 0.7)
    fc = forecast_clearsky_index(kc, IDX, truth, DayStreams(11))
    c = clear()
    fit = fit_pv_errors(c * kc, c * fc, c)
    assert fit.daily_sigma == pytest.approx(0.12, abs=0.015)
    assert fit.daily_persistence == pytest.approx(0.4, abs=0.12)
    assert fit.intraday_sigma == pytest.approx(0.07, abs=0.005)
    assert fit.intraday_persistence == pytest.approx(0.9, abs=0.02)
    assert fit.days == 730


def test_written_file_reads_as_an_error_model(tmp_path):
    kc = np.full(len(IDX), 0.6)
    fc = forecast_clearsky_index(kc, IDX, ErrorModel(), DayStreams(2))
    c = clear()
    fit = fit_pv_errors(c * kc, c * fc, c)
    path = write_error_model(tmp_path / "e.toml", fit, "site A history")
    m = load_error_model(path)
    assert m.pv_daily_sigma == round(fit.daily_sigma, 4)
    assert m.pv_intraday_persistence == round(fit.intraday_persistence, 4)
    base = ErrorModel()  # the other sections come from the shipped file unchanged
    assert (m.daily_concentration, m.load_daily_sigma) == (base.daily_concentration,
                                                           base.load_daily_sigma)
    assert "site A history" in m.source


def test_errors_name_the_problem(tmp_path):
    c = clear()
    with pytest.raises(ValueError, match="need the same index"):
        fit_pv_errors(c, c.iloc[1:], c)
    short = c.iloc[: 96 * 5]
    with pytest.raises(ValueError, match="5 days have daylight intervals with a forecast and "
                                         "a measurement; need at least 20"):
        fit_pv_errors(short, short, short)
    with pytest.raises(ValueError, match="regular 15-minute grid"):
        fit_pv_errors(c.iloc[::2], c.iloc[::2], c.iloc[::2])
    fit = fit_pv_errors(c, c * 1.01, c)
    with pytest.raises(ValueError, match=r"base error model file .*nope\.toml not found"):
        write_error_model(tmp_path / "e.toml", fit, "x", base=tmp_path / "nope.toml")
