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
