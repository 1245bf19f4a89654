"""Dispatch optimisation: one site or a fleet, Pyomo formulation of record, HiGHS solves.

Plain inputs in (dataclasses of numpy arrays, :mod:`models.specs`), plain results out.
Nothing here imports ``vpp`` or ``service``. The layers, bottom to top:

* :mod:`models.errors`, :mod:`models.specs` - errors, problem and result dataclasses;
* :mod:`models.components` - one module per part of the formulation (equations, validation,
  Pyomo block, array rows, audit, costs) and the registry that lists them;
* :mod:`models.site` - one site's model assembled from the registry;
* :mod:`models.certified` - sites as blocks of one HiGHS model, the certified strategy;
* :mod:`models.persistent`, :mod:`models.fleet`, :mod:`models.reference` - a model re-solved
  day after day, sites coupled by feeders and events, the straight Pyomo MILP;
* :mod:`models.solve` - :func:`solve_dispatch`.

The names below are the package's public interface (other packages import nothing else).
Solver-side names load on first use, so ``import models`` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from models.errors import InfeasiblePlanError, InvalidInputError
from models.specs import (
    GAP_FLOOR_YUAN,
    POWER_TOL_KW,
    STATUSES,
    DispatchProblem,
    DispatchResult,
    DREvent,
    FeederCap,
    GridSpec,
    ShiftableLoad,
    SolveOptions,
    StorageSpec,
)

_LAZY = {
    "solve_dispatch": "models.solve",
    "PersistentDispatch": "models.persistent",
    "Directions": "models.certified",
    "FleetProblem": "models.fleet",
    "FleetResult": "models.fleet",
    "EventOutcome": "models.fleet",
    "solve_fleet": "models.fleet",
    "structure_key": "models.site",
    "audit": "models.site",
    "costs": "models.site",
    "Tolerances": "models.components.base",
    "demand_charge_yuan": "models.components.grid",
    "soc_after": "models.components.storage",
    "power_room_kw": "models.components.storage",
    "cycle_budget_kwh": "models.components.storage",
}

__all__ = [
    "GAP_FLOOR_YUAN",
    "POWER_TOL_KW",
    "STATUSES",
    "DispatchProblem",
    "DispatchResult",
    "DREvent",
    "FeederCap",
    "GridSpec",
    "InfeasiblePlanError",
    "InvalidInputError",
    "ShiftableLoad",
    "SolveOptions",
    "StorageSpec",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'models' has no attribute {name!r}")
