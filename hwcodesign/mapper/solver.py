"""Solving the mapper's integer programs under a time limit: the one place CBC is called.

An integer program can take arbitrarily long (DenseNet-121 on the Ultra96-V2 ran 25 minutes
without an answer), which an interactive tool must not do. One `Deadline` covers every program
solved for one mapping (the FIFO re-solves, the frugal tie-break, the explanation of why nothing
fits), and each solve gives CBC only the time left. When CBC stops on time with a feasible
solution, that solution is used and the deadline remembers that the result is not proven
optimal (the report says so); when it stops with none, `SolverTimeout` says what to try.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from enum import Enum

import pulp

from hwcodesign.errors import HwcodesignError

DEFAULT_TIME_LIMIT = 60.0  # seconds for one mapping: long for a CNN that maps, short enough to wait for
NOT_PROVEN_NOTE = ("the solver's time limit ran out: this is the best design found within {limit:g} s, "
                   "not proven optimal (a longer --time-limit may find a better one)")


class SolverTimeout(HwcodesignError):
    """The time limit ran out before any design satisfying the constraints was found."""


class Outcome(Enum):
    OPTIMAL = "optimal"  # solved and proven optimal
    FEASIBLE = "feasible"  # stopped on the time limit with a solution that meets every constraint
    INFEASIBLE = "infeasible"  # proven that nothing meets the constraints
    TIMEOUT = "timeout"  # stopped on the time limit with no solution


@dataclass
class Deadline:
    """The time left for one mapping's integer programs (`limit` None: no limit)."""

    limit: float | None = DEFAULT_TIME_LIMIT
    start: float = field(default_factory=time.perf_counter)
    stopped_early: bool = False  # some solve returned a solution not proven optimal

    def __post_init__(self) -> None:
        if self.limit is not None and not (math.isfinite(self.limit) and self.limit > 0):
            raise HwcodesignError(f"time limit {self.limit}: must be a positive number of seconds")

    @staticmethod
    def of(limit: float | Deadline | None) -> Deadline:
        """`limit` itself when it is a Deadline (shared by the caller), else a new one."""
        return limit if isinstance(limit, Deadline) else Deadline(limit)

    def remaining(self) -> float | None:
        return None if self.limit is None else self.limit - (time.perf_counter() - self.start)

    @property
    def note(self) -> str:
        """What the report says about the design: empty when every solve was proven optimal."""
        return NOT_PROVEN_NOTE.format(limit=self.limit) if self.stopped_early else ""

    def timeout(self, what: str, hint: str) -> SolverTimeout:
        return SolverTimeout(f"{what}: no design found within the {self.limit:g} s time limit; {hint}")


def solve_within(problem: pulp.LpProblem, deadline: Deadline, share: float = 1.0, warm_start: bool = False) -> Outcome:
    """Solve `problem` with CBC within `share` of the time `deadline` has left (a caller with
    more programs to solve after this one keeps the rest for them); `warm_start`: CBC starts from
    the variables' initial values (a solution found before, still usable when time is short).
    A solution CBC reports after stopping on time counts only if `sol_status` says it is integer
    feasible."""
    remaining = deadline.remaining()
    if remaining is not None and remaining <= 0:
        return Outcome.TIMEOUT
    remaining = None if remaining is None else remaining * share
    status = problem.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=remaining, warmStart=warm_start))
    if pulp.LpStatus[status] == "Optimal":
        if problem.sol_status == pulp.LpSolutionOptimal:
            return Outcome.OPTIMAL
        if problem.sol_status == pulp.LpSolutionIntegerFeasible:
            return Outcome.FEASIBLE
    if pulp.LpStatus[status] == "Not Solved" and remaining is not None:
        return Outcome.TIMEOUT
    return Outcome.INFEASIBLE
