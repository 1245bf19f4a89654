"""The one accounting (vpp/accounting.py) by hand: baseline, KPIs, cycling inside a valley."""

from __future__ import annotations

import numpy as np
import pytest

from vpp.accounting import valley_cycling_kwh


def test_valley_cycling_by_hand():
    """Valley stretches {0, 1} and {3}: charged 10, discharged 6 kWh in the first (6 cycled),
    5 and 4 in the second (4 cycled); the flat hour's discharge is not in a valley: 10 kWh."""
    periods = np.array(["valley", "valley", "flat", "deep_valley"], dtype=object)
    assert valley_cycling_kwh(periods, np.array([10.0, 0, 0, 5]), np.array([0.0, 6, 3, 4]),
                              1.0) == pytest.approx(10.0)
    # quarter hours: energies are a quarter of the powers
    assert valley_cycling_kwh(periods, np.array([10.0, 0, 0, 5]), np.array([0.0, 6, 3, 4]),
                              0.25) == pytest.approx(2.5)
    assert valley_cycling_kwh(periods, np.zeros(4), np.array([5.0, 5, 5, 5]), 1.0) == 0.0
