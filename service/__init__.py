"""HTTP service (FastAPI) over the :mod:`vpp` application layer.

Nothing imports this package; it imports :mod:`vpp` only.
"""
