"""Optimisation formulations (Pyomo) and their HiGHS solves.

Plain inputs in (dataclasses of numpy arrays), plain results out. Nothing here imports
``vpp`` or ``service``.
"""

from models.dispatch import (
    DispatchProblem,
    DispatchResult,
    GridSpec,
    ShiftableLoad,
    SolveOptions,
    StorageSpec,
    solve_dispatch,
)
from models.errors import InfeasiblePlanError, InvalidInputError

__all__ = [
    "DispatchProblem",
    "DispatchResult",
    "GridSpec",
    "InfeasiblePlanError",
    "InvalidInputError",
    "ShiftableLoad",
    "SolveOptions",
    "StorageSpec",
    "solve_dispatch",
]
