"""What every part of the site formulation provides, and the tools to write it.

A *component* (one module of :mod:`models.components` each: PV, grid & demand charge,
shiftable loads, storage, subsidy, valid cuts, power balance, ...) holds, for its part of the
formulation:

* its equations, in the module docstring;
* :meth:`Component.validate` (every bad parameter named) and :meth:`Component.precheck`
  (infeasibilities that can be named exactly before solving);
* its Pyomo block - :meth:`Component.variables` and :meth:`Component.constraints`, the
  formulation of record;
* its rows for the HiGHS array path - :meth:`Component.columns` and :meth:`Component.rows`,
  the same linear program written with numpy (``tests/test_lp.py`` compares the two
  coefficient by coefficient);
* what the solve strategy needs to know of its integer decisions (:meth:`integer_columns`,
  :meth:`candidates`, :meth:`repairs`, :meth:`from_hint`, :meth:`start`) and of its
  demand charge (:meth:`demand_columns`, :meth:`cap`);
* :meth:`Component.structure` (what a persistent model cannot change between solves),
  :meth:`Component.extract` (its part of the result), :meth:`Component.audit` (its
  equations checked on any plan's numbers) and :meth:`Component.costs` (its money).

:mod:`models.site` runs every registered component (:data:`models.components.REGISTRY`) in
order for each of these steps; nothing else in the package knows the equations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from models.specs import DispatchProblem

INF = float("inf")
EMPTY = np.array([], dtype=np.int64)


class Flows(Protocol):
    """A plan's per-interval quantities, as :class:`models.specs.DispatchResult` names them
    (powers [kW], ``soc_kwh`` at interval ends)."""

    pv_used_kw: np.ndarray
    pv_curtailed_kw: np.ndarray
    charge_kw: np.ndarray
    discharge_kw: np.ndarray
    soc_kwh: np.ndarray
    grid_import_kw: np.ndarray
    grid_export_kw: np.ndarray
    flexible_load_kw: np.ndarray


@dataclass(frozen=True)
class Tolerances:
    """How far an audited plan may be off: power [kW], energy [kWh], money [yuan]."""

    kw: float = 1e-3
    kwh: float = 1e-2
    yuan: float = 1e-2


class SiteCols(dict):
    """Column indices of one site's variable families, by family name (``"imp"`` -> one
    index per interval; scalar families such as ``"peak"`` -> an array of one)."""

    def shifted(self, offset: int) -> SiteCols:
        """The same columns ``offset`` further on (a block of a larger model)."""
        return SiteCols({k: v + offset for k, v in self.items()})

    def get_cols(self, name: str) -> np.ndarray:
        """The family's columns, empty if the site has none."""
        return self.get(name, EMPTY)


@dataclass
class SiteLP:
    """One site's linear program: ``min cost·x + offset`` s.t. ``row_lower <= A x <=
    row_upper``, ``col_lower <= x <= col_upper``; ``A`` as triplets ``(a_row, a_col,
    a_val)``. Money in yuan, powers in kW, energy in kWh."""

    cols: SiteCols
    col_lower: np.ndarray
    col_upper: np.ndarray
    cost: np.ndarray
    offset: float
    row_lower: np.ndarray
    row_upper: np.ndarray
    a_row: np.ndarray
    a_col: np.ndarray
    a_val: np.ndarray
    #: (constraint name, first row, row count, index labels or None for a scalar constraint)
    row_groups: list[tuple[str, int, int, Sequence | None]] = field(default_factory=list)
    #: (family name, index labels or None for a scalar variable), in column order
    col_groups: list[tuple[str, Sequence | None]] = field(default_factory=list)

    @property
    def num_col(self) -> int:
        return len(self.cost)

    @property
    def num_row(self) -> int:
        return len(self.row_lower)

    @staticmethod
    def _names(groups) -> list[str]:
        out = []
        for name, labels in groups:
            if labels is None:
                out.append(name)
            else:
                out += [f"{name}[{','.join(map(str, i)) if isinstance(i, tuple) else i}]"
                        for i in labels]
        return out

    def col_names(self) -> list[str]:
        """Names of the columns as Pyomo names the variables (``imp[3]``, ``flex[0,40]``)."""
        return self._names(self.col_groups)

    def row_names(self) -> list[str]:
        """Names of the rows as Pyomo names the constraints (``power_balance[3]``)."""
        return self._names([(g[0], g[3]) for g in self.row_groups])


def _full(v: Any, k: int, dtype) -> np.ndarray:
    return np.full(k, v, dtype=dtype) if np.isscalar(v) else np.asarray(v, dtype=dtype)


class LPWriter:
    """Collects one site's columns, costs and rows as arrays (see :class:`SiteLP`)."""

    def __init__(self) -> None:
        self.cols = SiteCols()
        self._lo: list[np.ndarray] = []
        self._up: list[np.ndarray] = []
        self._cost: list[np.ndarray] = []
        self._extra_cost: list[tuple[np.ndarray, np.ndarray]] = []
        self.offset = 0.0
        self.ncol = 0
        self.nrow = 0
        self._rl: list[np.ndarray] = []
        self._ru: list[np.ndarray] = []
        self._ar: list[np.ndarray] = []
        self._ac: list[np.ndarray] = []
        self._av: list[np.ndarray] = []
        self.row_groups: list[tuple[str, int, int, Sequence | None]] = []
        self.col_groups: list[tuple[str, Sequence | None]] = []

    def columns(self, name: str, count: int, lower: Any, upper: Any, cost: Any = 0.0,
                labels: Sequence | type | None = range) -> np.ndarray:
        """Add a family of ``count`` columns (``labels=None``: one scalar column); their
        indices."""
        idx = np.arange(self.ncol, self.ncol + count, dtype=np.int64)
        self._lo.append(_full(lower, count, float))
        self._up.append(_full(upper, count, float))
        self._cost.append(_full(cost, count, float))
        self.cols[name] = idx
        self.col_groups.append((name, range(count) if labels is range else labels))
        self.ncol += count
        return idx

    def add_cost(self, cols: np.ndarray, values: Any) -> None:
        """Add ``values`` to the cost of existing columns ``cols`` (another part's money on
        them, e.g. the subsidy on discharge)."""
        self._extra_cost.append((np.asarray(cols), _full(values, len(cols), float)))

    def rows(self, name: str, lower: Any, upper: Any, count: int,
             terms: list[tuple[Any, Any, Any]], labels: Sequence | type | None = range) -> None:
        """Add ``count`` rows ``lower <= sum(terms) <= upper``; each term is ``(row offsets
        within the group, columns, coefficients)``, scalars broadcast."""
        self._rl.append(_full(lower, count, float))
        self._ru.append(_full(upper, count, float))
        for r, c, v in terms:
            r = np.asarray(r, dtype=np.int64)
            self._ar.append(self.nrow + r)
            self._ac.append(_full(c, len(r), np.int64))
            self._av.append(_full(v, len(r), float))
        self.row_groups.append((name, self.nrow, count,
                                range(count) if labels is range else labels))
        self.nrow += count

    def finish(self) -> SiteLP:
        cost = np.concatenate(self._cost)
        for cols, vals in self._extra_cost:
            np.add.at(cost, cols, vals)
        def cat(parts: list[np.ndarray], dt: type) -> np.ndarray:
            return np.concatenate(parts) if parts else np.array([], dtype=dt)

        return SiteLP(
            cols=self.cols, col_lower=np.concatenate(self._lo),
            col_upper=np.concatenate(self._up), cost=cost, offset=float(self.offset),
            row_lower=cat(self._rl, float), row_upper=cat(self._ru, float),
            a_row=cat(self._ar, np.int64), a_col=cat(self._ac, np.int64),
            a_val=cat(self._av, float), row_groups=self.row_groups,
            col_groups=self.col_groups)


#: A term of the power balance on the Pyomo path: ``f(m, t)`` -> expression [kW].
PyomoTerm = Callable[[Any, int], Any]


@dataclass
class Context:
    """What the components of one site share while its model is written.

    ``hi`` holds the largest value each flow can take per interval [kW]
    (:func:`models.components.coupling.flow_bounds`). ``balance`` collects the array terms
    of the power balance (``(interval of each column, columns, sign)``), ``pyomo_balance``
    its Pyomo terms ``(sign, f(m, t))``, ``pyomo_cost`` the Pyomo cost expressions [yuan];
    ``peak_terms`` / ``pyomo_peak_terms`` the same for the grid's peak rows.
    """

    p: DispatchProblem
    hi: dict[str, np.ndarray]
    balance: list[tuple[np.ndarray, np.ndarray, float]] = field(default_factory=list)
    pyomo_balance: list[tuple[float, PyomoTerm]] = field(default_factory=list)
    pyomo_cost: list[Any] = field(default_factory=list)
    #: terms other parts add to the grid's ``peak_demand`` rows (arrays and Pyomo)
    peak_terms: list[tuple[np.ndarray, np.ndarray, float]] = field(default_factory=list)
    pyomo_peak_terms: list[tuple[float, PyomoTerm]] = field(default_factory=list)

    @property
    def n(self) -> int:
        return self.p.n

    @property
    def t(self) -> np.ndarray:
        return np.arange(self.p.n)


class Component:
    """A part of the site formulation; every hook defaults to "nothing to add"."""

    #: Short name, used in messages and the docs.
    name = "component"

    def active(self, p: DispatchProblem) -> bool:
        """Whether ``p`` has this part at all."""
        return True

    # ------------------------------------------------------------------ checks
    def validate(self, p: DispatchProblem) -> list[str]:
        """Every parameter of ``p`` outside its documented range, one string each."""
        return []

    def precheck(self, p: DispatchProblem) -> list[str]:
        """Infeasibilities that can be named exactly before solving, one reason each."""
        return []

    def structure(self, p: DispatchProblem) -> tuple:
        """What of ``p`` fixes this part's matrix pattern (the persistent model's key)."""
        return ()

    # ------------------------------------------------------------------ arrays
    def columns(self, ctx: Context, w: LPWriter) -> None:
        """Add this part's columns, their bounds and costs, and its balance terms."""

    def rows(self, ctx: Context, w: LPWriter) -> None:
        """Add this part's rows."""

    # ------------------------------------------------------------------ Pyomo
    def variables(self, ctx: Context, m: Any) -> None:
        """Add this part's variables to block ``m`` and its balance terms."""

    def constraints(self, ctx: Context, m: Any) -> None:
        """Add this part's constraints to block ``m`` and its cost expressions."""

    # ------------------------------------------------------------------ integer decisions
    def integer_columns(self, p: DispatchProblem, cols: SiteCols) -> np.ndarray:
        """Columns that are binary in the MILP (continuous in [0, 1] in the relaxation)."""
        return EMPTY

    def candidates(self, p: DispatchProblem, cols: SiteCols) -> np.ndarray:
        """Of those, the ones made binary before any relaxation is seen."""
        return EMPTY

    def repairs(self, p: DispatchProblem, cols: SiteCols, x: np.ndarray,
                ) -> tuple[np.ndarray, np.ndarray]:
        """Integer columns to fix (and their values) because the plan ``x`` is not feasible
        for the MILP as it stands; empty when it is."""
        return EMPTY, np.array([])

    def from_hint(self, p: DispatchProblem, cols: SiteCols, hint: Flows,
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Integer columns fixed (and values) as a known plan ``hint`` sets them."""
        return EMPTY, np.array([])

    def start(self, p: DispatchProblem, cols: SiteCols, x: np.ndarray,
              ) -> tuple[np.ndarray, np.ndarray]:
        """Integer values consistent with the plan ``x`` (a MILP start)."""
        return EMPTY, np.array([])

    # ------------------------------------------------------------------ demand charge
    def demand_columns(self, p: DispatchProblem, lp: SiteLP) -> tuple[np.ndarray, float]:
        """Columns (site-local) whose cost is this part's demand charge, and the part of
        the objective offset that belongs to it [yuan]."""
        return EMPTY, 0.0

    def cap(self, p: DispatchProblem, slack_yuan: float) -> DispatchProblem | None:
        """``p`` with imports capped at what a plan can use when its demand charge may be
        at most ``slack_yuan``; None when that changes nothing."""
        return None

    # ------------------------------------------------------------------ results
    def extract(self, p: DispatchProblem, cols: SiteCols, x: np.ndarray,
                out: dict[str, Any]) -> None:
        """Write this part's result arrays (:class:`DispatchResult` names) into ``out``."""

    def audit(self, p: DispatchProblem, f: Flows, tol: Tolerances) -> list[str]:
        """Every violation of this part's equations by the plan ``f``."""
        return []

    def costs(self, p: DispatchProblem, f: Flows) -> dict[str, float]:
        """This part's money in plan ``f`` [yuan] (or energy [kWh]), by name."""
        return {}


def pyomo_env() -> Any:
    """``pyomo.environ``, imported on first use: the array path never needs Pyomo, and it
    costs most of a second to import."""
    import pyomo.environ

    return pyomo.environ


def clean(a: np.ndarray) -> np.ndarray:
    """Solver noise (``|v| < 1e-9``) as exact zeros, so plans read exactly."""
    return np.where(np.abs(a) < 1e-9, 0.0, a)


def first_violation(mask: np.ndarray, what: str, values: np.ndarray,
                    labels: Callable[[int], str]) -> list[str]:
    """One message naming the first interval where ``mask`` holds and how many do."""
    bad = np.flatnonzero(mask)
    if not bad.size:
        return []
    t = int(bad[0])
    return [f"{what} at {labels(t)} ({bad.size} intervals), value {values[t]:.6g}"]
