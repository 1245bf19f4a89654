"""Forecast inputs for dispatch: PV power with pvlib, load profiles, the Chinese work calendar.

Plain inputs in (dataclasses, pandas objects), plain outputs with the input's index. Nothing
here imports ``vpp`` or ``service``.
"""
