"""The application: sites and fleet, tariffs, subsidy policy, planning, plan I/O and the CLI.

Depends on :mod:`models` (optimisation) and :mod:`forecasts` (PV, load, calendar).
"""
