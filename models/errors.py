"""Errors raised by the optimisation layer."""

from __future__ import annotations


class InvalidInputError(ValueError):
    """Input data violates a documented range; the message lists every violation."""

    def __init__(self, problems: list[str] | str, context: str = "invalid input") -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.context = context
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{context} ({len(self.problems)} problem(s)):\n{lines}")

    def __reduce__(self):
        # rebuilt from its parts when it crosses a process boundary
        return type(self), (self.problems, self.context)

    def naming(self, prefix: str, context: str | None = None) -> InvalidInputError:
        """The same problems, each preceded by ``prefix`` (the option, file or query that
        led to them, e.g. ``"at=2020-01-01T00:00:00+08:00: "``), under ``context`` (default
        this error's)."""
        return InvalidInputError([f"{prefix}{p}" for p in self.problems],
                                 self.context if context is None else context)


class InfeasiblePlanError(RuntimeError):
    """No plan satisfies the constraints, or the solver did not prove optimality.

    Attributes
    ----------
    status : str
        Termination condition reported by the solver (or ``"precheck"``).
    reasons : list of str
        Human explanations, each naming the constraint group that blocks.
    """

    def __init__(self, reasons: list[str] | str, status: str = "infeasible") -> None:
        self.status = status
        self.reasons = [reasons] if isinstance(reasons, str) else list(reasons)
        super().__init__(f"no feasible plan ({status}): " + "; ".join(self.reasons))

    def __reduce__(self):
        return type(self), (self.reasons, self.status)


def no_plan_error(stage: str, status: str, infeasible: bool,
                  terminal_floor_kwh: float | None) -> InfeasiblePlanError:
    """The error for a solve that ended without a plan: proven infeasible (which constraint
    groups meet; ``terminal_floor_kwh`` named when there is one battery) or stopped early."""
    if infeasible:
        floor = "" if terminal_floor_kwh is None else f" (>= {terminal_floor_kwh:.1f} kWh)"
        return InfeasiblePlanError(
            [f"{stage}: no dispatch meets the power balance, SOC window, terminal SOC{floor}, "
             "daily cycle cap, import/export limits and shiftable-load energy together; "
             "relax one of them"], status=status)
    return InfeasiblePlanError(
        [f"{stage}: HiGHS stopped with {status} before proving optimality"], status=status)


def gap_error(stage: str, gap: float, required: float, time_limit_s: float,
              status: str) -> InfeasiblePlanError:
    """The error for a MILP that stopped (time limit) above the required certified gap."""
    return InfeasiblePlanError(
        [f"{stage}HiGHS reached a certified gap of {gap:.3%} within {time_limit_s:g} s, "
         f"above the required {required:.3%}; raise time_limit_s"], status=status)


def time_limit_note(gap: float, required: float, time_limit_s: float) -> str:
    """What a plan returned at the time limit says of itself."""
    return (f"time limit: the {time_limit_s:g} s budget ran out with this plan proven within "
            f"{gap:.3%} of the optimum, above the required {required:.3%}; raise the time "
            "limit for a certified plan")
