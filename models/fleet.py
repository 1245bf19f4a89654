"""Several sites in one model: shared feeder limits and demand-response events.

Each site is the block of :func:`models.site.populate` (as arrays, :func:`models.site.site_lp`);
the coupling constraints are

* feeder ``f``, interval ``t``, on the *net* flow through the feeder head (the sites' net
  meter readings added up, import positive)::

      -export_cap_f <= sum_{s in f} (imp_s[t] - exp_s[t]) <= import_cap_f

  A feeder or substation transformer is limited by the power that flows through it, and
  what one site exports while another on the same feeder imports never reaches it: the
  flow at the head is the sum of the sites' net flows. Capping gross imports and gross
  exports separately would bind a 1,000 kW export cap while the feeder as a whole draws
  11 MW (the Jingkai feeder, 2026-07-15), a limit no equipment has. The caps are thermal
  limits [kW] of the head in each direction (reverse flow: the export cap); voltage limits
  along the feeder are not modelled.
* event ``e`` with direction ``d`` (+1 peak shaving: import goes *down*; -1 valley filling:
  import goes *up*), window ``W``, request ``R`` [kW] and each site's baseline net import
  ``b_s`` (its plan without the event)::

      delivered[t] = d * sum_s (b_s[t] - (imp_s[t] - exp_s[t]))      t in W
      delivered[t] + short[t] >= R,  short[t] >= 0
      credited[t] <= delivered[t],  0 <= credited[t] <= R          (energy compensation)
      held <= delivered[t] for all t in W,  0 <= held <= R          (capacity compensation)

  A site in the model for a shared feeder only (a *bystander*: in no event, with a
  baseline) may help but not undo an event: ``d * (imp_s[t] - exp_s[t]) <= d * b_s[t]`` in
  its window - otherwise it could spend the headroom a participant's paid reduction frees.

Objective [yuan]: the sites' costs + ``sum dt * penalty * short - sum dt * comp_kwh *
credited - comp_kw * held``. Compensation stops at the request, shortfall is paid for, so the
fleet delivers the request at least cost or reports what it cannot deliver.

The joint model is solved with the same certified strategy as one site
(:class:`models.certified.BlockModel`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from models.certified import BlockModel, Directions
from models.components.shiftable import shiftable_range
from models.errors import InfeasiblePlanError, InvalidInputError
from models.persistent import block_result
from models.site import precheck, validate
from models.specs import DispatchProblem, DispatchResult, DREvent, FeederCap, SolveOptions

INF = float("inf")
#: Slack of a bystander's bound [kW]: its baseline comes back from the solver within its
#: tolerances, so the baseline itself must stay feasible.
BYSTANDER_TOL_KW = 1e-3


@dataclass(frozen=True)
class FleetProblem:
    """Site problems by id, their couplings, and (for events) each site's baseline net
    import [kW] (``grid_import - grid_export`` of its plan without the events)."""

    sites: dict[str, DispatchProblem]
    feeders: tuple[FeederCap, ...] = ()
    events: tuple[DREvent, ...] = ()
    baseline_net_kw: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class EventOutcome:
    """Per-interval delivery of one event [kW] and its money [yuan]."""

    event: DREvent
    delivered_kw: np.ndarray
    shortfall_kw: np.ndarray
    by_site_kw: dict[str, np.ndarray]
    compensation_yuan: float
    penalty_yuan: float


@dataclass
class FleetResult:
    """Per-site plans of the joint solve, the events' outcomes and the timing [s];
    ``status`` is ``"time_limit"`` when the budget ran out above the gap (every site's
    result says so too)."""

    sites: dict[str, DispatchResult]
    events: list[EventOutcome]
    objective_yuan: float
    objective_bound_yuan: float
    optimality_gap: float
    method: str
    build_seconds: float
    solve_seconds: float
    highs_seconds: float
    extract_seconds: float
    status: str = "optimal"


def validate_fleet(fp: FleetProblem) -> None:
    problems = []
    ns = {p.n for p in fp.sites.values()}
    if len(ns) != 1:
        problems.append(f"all sites need the same horizon, got interval counts {sorted(ns)}")
    n = ns.pop() if len(ns) == 1 else 0
    for f in fp.feeders:
        unknown = [s for s in f.members if s not in fp.sites]
        if unknown:
            problems.append(f"feeder {f.name}: sites {unknown} are not in the problem")
        for cap in ("import_cap_kw", "export_cap_kw"):
            v = getattr(f, cap)
            if v is not None and v < 0:
                problems.append(f"feeder {f.name}: {cap}={v} must be >= 0 kW")
    for e in fp.events:
        if not 0 <= e.start < e.end <= n:
            problems.append(f"event {e.name}: intervals [{e.start}, {e.end}) outside the "
                            f"horizon [0, {n})")
        if e.requested_kw <= 0:
            problems.append(f"event {e.name}: requested_kw={e.requested_kw} must be > 0")
        for s in e.participants or fp.sites:
            if s not in fp.sites:
                problems.append(f"event {e.name}: participant {s} is not in the problem")
            elif s not in fp.baseline_net_kw:
                problems.append(f"event {e.name}: no baseline for participant {s}")
    if problems:
        raise InvalidInputError(problems, "invalid fleet problem")


def precheck_feeders(fp: FleetProblem) -> None:
    """Raise :class:`InfeasiblePlanError` naming the feeder and interval where even every
    battery discharging at full power, every flexible load at its minimum and every site
    exporting up to its limit leaves the sites' net import above the feeder's cap."""
    reasons = []
    for f in fp.feeders:
        if f.import_cap_kw is None:
            continue
        need = np.zeros(next(iter(fp.sites.values())).n)
        for s in f.members:
            p = fp.sites[s]
            flex_min, _ = shiftable_range(p)
            dis = p.storage.power_kw if p.storage is not None else 0.0
            need += np.maximum(p.load_kw + flex_min - p.pv_kw - dis, -p.grid.export_limit_kw)
        t = int(np.argmax(need))
        if need[t] > f.import_cap_kw + 1e-6:
            p0 = fp.sites[f.members[0]]
            reasons.append(
                f"feeder {f.name}: at {p0.label(t)} its sites import at least {need[t]:.0f} kW "
                f"net (load minus PV minus every battery at full discharge, exports up to "
                f"each site's limit), above the {f.import_cap_kw:.0f} kW cap")
    if reasons:
        raise InfeasiblePlanError(reasons, status="precheck")


def add_coupling(model: BlockModel, fp: FleetProblem) -> list[dict[str, np.ndarray]]:
    """Add the feeder and event rows (and the events' columns) of the module docstring to
    ``model``, whose blocks are ``fp.sites`` in order; per event its columns ``short``,
    ``credited`` and ``held`` (empty where the event has none)."""
    ids = list(fp.sites)
    cols = {s: model.blocks[i].cols for i, s in enumerate(ids)}
    first = fp.sites[ids[0]]
    n, dt = first.n, first.dt_h
    lower, upper, a_row, a_col, a_val = [], [], [], [], []
    nrow = 0
    t = np.arange(n)

    def rows(lo, up, terms) -> None:
        nonlocal nrow
        lo, up = np.atleast_1d(np.asarray(lo, float)), np.atleast_1d(np.asarray(up, float))
        lower.append(lo)
        upper.append(up)
        for r, c, v in terms:
            c = np.atleast_1d(np.asarray(c))
            a_row.append(nrow + np.broadcast_to(np.asarray(r), c.shape))
            a_col.append(c)
            a_val.append(np.broadcast_to(np.asarray(v, float), c.shape))
        nrow += len(lo)

    for f in fp.feeders:
        # -export_cap <= sum_s (imp_s - exp_s) <= import_cap: the net flow at the head
        lo = -INF if f.export_cap_kw is None else -f.export_cap_kw
        up = INF if f.import_cap_kw is None else f.import_cap_kw
        rows(np.full(n, lo), np.full(n, up),
             [term for s in f.members for term in ((t, cols[s]["imp"], 1.0),
                                                   (t, cols[s]["exp"], -1.0))])
    event_cols = []
    taking_part = {s for e in fp.events for s in (e.participants or ids)}
    bystanders = [s for s in ids if s not in taking_part and s in fp.baseline_net_kw]
    for e in fp.events:
        w = np.arange(e.start, e.end)
        k, d = len(w), e.direction
        parts = e.participants or tuple(ids)
        base = d * sum(np.asarray(fp.baseline_net_kw[s], float)[w] for s in parts)
        # d * (baseline - (imp - exp)) summed over the participants, as terms of one row each
        delivered = [term for s in parts for term in ((np.arange(k), cols[s]["imp"][w], -d),
                                                      (np.arange(k), cols[s]["exp"][w], d))]
        short = model.add_columns(np.zeros(k), np.full(k, INF),
                                  np.full(k, e.shortfall_penalty_yuan_per_kwh * dt))
        rows(e.requested_kw - base, np.full(k, INF), [*delivered, (np.arange(k), short, 1.0)])
        flipped = [(r, c, -v) for r, c, v in delivered]
        credited = held = np.array([], dtype=np.int32)
        if e.compensation_yuan_per_kwh > 0:
            credited = model.add_columns(np.zeros(k), np.full(k, e.requested_kw),
                                         np.full(k, -e.compensation_yuan_per_kwh * dt))
            rows(np.full(k, -INF), base, [*flipped, (np.arange(k), credited, 1.0)])
        if e.compensation_yuan_per_kw > 0:
            held = model.add_columns(np.zeros(1), np.full(1, e.requested_kw),
                                     np.full(1, -e.compensation_yuan_per_kw))
            rows(np.full(k, -INF), base, [*flipped, (np.arange(k), np.full(k, held[0]), 1.0)])
        event_cols.append({"short": short, "credited": credited, "held": held})
        # bystanders (sites in the model for a shared feeder, in no event) may not undo
        # the event: d * (imp - exp) <= d * baseline in its window
        for s in (bystanders if e.participants else ()):
            b = d * np.asarray(fp.baseline_net_kw[s], float)[w] + BYSTANDER_TOL_KW
            rows(np.full(k, -INF), b, [(np.arange(k), cols[s]["imp"][w], d),
                                       (np.arange(k), cols[s]["exp"][w], -d)])
    if nrow:
        model.add_rows(np.concatenate(lower), np.concatenate(upper), np.concatenate(a_row),
                       np.concatenate(a_col), np.concatenate(a_val))
    return event_cols


def solve_fleet(fp: FleetProblem, opts: SolveOptions | None = None,
                hints: dict[str, Directions] | None = None) -> FleetResult:
    """Solve the sites of ``fp`` jointly to the certified gap ``opts.mip_rel_gap`` (relative
    to the fleet objective), with the strategy of :class:`models.certified.BlockModel`;
    ``hints``: known plans of (some of) the sites, e.g. without the coupling, whose
    directions are tried as an incumbent (they change the speed, never the certificate).

    Each site's :class:`DispatchResult` carries its own cost as ``objective_yuan`` and the
    fleet's certificate: ``optimality_gap`` is the fleet gap, ``objective_bound_yuan`` the
    site cost minus the fleet's absolute gap.
    """
    opts = opts or SolveOptions()
    opts.validate()
    for p in fp.sites.values():
        validate(p)
        precheck(p)
    validate_fleet(fp)
    precheck_feeders(fp)
    t0 = time.perf_counter()
    ids = list(fp.sites)
    model = BlockModel([fp.sites[s] for s in ids], opts)
    event_cols = add_coupling(model, fp)
    t1 = time.perf_counter()
    try:
        cert = model.solve(stage="fleet ", hints=[(hints or {}).get(s) for s in ids])
    except InfeasiblePlanError as exc:
        caps = "; ".join(
            f"{f.name} import <= {f.import_cap_kw} kW, export <= {f.export_cap_kw} kW"
            for f in fp.feeders)
        if caps and exc.status != "precheck":
            exc = InfeasiblePlanError(
                [*exc.reasons, f"each site alone has a plan, so the shared limits are too "
                 f"tight for the sites' energy over the day: {caps}"], exc.status)
        raise exc from None
    t2 = time.perf_counter()
    abs_gap = max(0.0, cert.upper - cert.lower)
    sites = {}
    for i, s in enumerate(ids):
        own = model.block_cost(i, cert.x)
        # the site's plan on its own problem (the block may carry the incumbent's peak cap)
        r = block_result(model, i, cert, t2 - t0, fp.sites[s])
        r.objective_yuan, r.objective_bound_yuan = own, own - abs_gap
        sites[s] = r
    events = []
    n = next(iter(fp.sites.values())).n
    dt = next(iter(fp.sites.values())).dt_h
    for e, ec in zip(fp.events, event_cols, strict=True):
        parts_ = e.participants or tuple(fp.sites)
        by_site = {}
        for s in parts_:
            net = sites[s].grid_import_kw - sites[s].grid_export_kw
            arr = np.zeros(n)
            arr[e.start:e.end] = e.direction * (fp.baseline_net_kw[s][e.start:e.end]
                                                - net[e.start:e.end])
            by_site[s] = np.where(np.abs(arr) < 1e-9, 0.0, arr)
        delivered = sum(by_site.values())
        short = np.zeros(n)
        short[e.start:e.end] = np.clip(cert.x[ec["short"]], 0.0, None)
        credited = np.minimum(np.clip(delivered[e.start:e.end], 0.0, None), e.requested_kw)
        comp = e.compensation_yuan_per_kwh * dt * float(credited.sum())
        if e.compensation_yuan_per_kw > 0:
            comp += e.compensation_yuan_per_kw * float(min(credited.min(), e.requested_kw))
        events.append(EventOutcome(e, delivered, short, by_site, comp,
                                   e.shortfall_penalty_yuan_per_kwh * dt * float(short.sum())))
    t3 = time.perf_counter()
    return FleetResult(sites, events, cert.upper, cert.lower, cert.gap, cert.method, t1 - t0,
                       t2 - t1, cert.highs_seconds, t3 - t2, cert.status)
