"""The parts of one site's formulation, one module each (see :mod:`models.components.base`).

:data:`REGISTRY` is the one list :mod:`models.site` walks to validate a problem, write its
Pyomo model and its arrays, key its structure, read a solution and audit a plan. Columns and
rows come out in registry order (all columns first, so that any part's rows may use
any part's columns). To add a part: write its module (equations in the
docstring, validation, Pyomo block, array rows, audit), add it here, and add the parameter it
reads to :mod:`models.specs`.
"""

from __future__ import annotations

from models.components import (
    coupling,
    cuts,
    direction,
    grid,
    peak_reserve,
    pv,
    shiftable,
    storage,
    storage_export,
    subsidy,
)
from models.components.base import Component

#: Every part, in the order their columns and rows are written.
REGISTRY: tuple[Component, ...] = (
    coupling.COMPONENT,  # its balance rows are written after every part added its terms
    pv.COMPONENT,
    storage_export.COMPONENT,  # before grid: its MILP start wins where both set y
    grid.COMPONENT,
    cuts.COMPONENT,
    shiftable.COMPONENT,
    direction.COMPONENT,  # before storage: its side sequence wins where both fix one
    storage.COMPONENT,
    storage.NO_STORAGE,
    peak_reserve.COMPONENT,
    subsidy.COMPONENT,
)

__all__ = ["REGISTRY", "Component"]
