"""The simulator's step accounting, ROS-free: who owes an answer for the step, and what every answer was.

Used by `sim_node` (which only turns messages into calls and verdicts into log lines); numpy only, so
it is unit-tested without rclpy (test/test_step_ledger.py).

A run is a sequence of decision steps 0, 1, ... . `StepLedger.begin` opens the next step: the live
robots (fewer than `max_missed` missed steps in a row) and a live controller are *owed* an answer.
Each answer is classified (`Verdict`):

- `APPLIED`: for the open step; a robot's first answer sets its goal and clears it from the owed set,
  the controller's first valid command sets a_g. Any robot heard from, whatever its verdict, is live
  again (waited for from the next step on).
- `LATE`: for a step already announced but no longer open (counted, never applied).
- `NOT_ANNOUNCED`: for a step whose tick was not published yet (counted as bad).
- `DUPLICATE`: a second answer of the same robot (or controller) for the open step (counted).
- `OUT_OF_RANGE`: a controller command outside [0, n_global_actions) (counted as bad; the controller
  is still owed).

The step is complete when nobody is owed an answer (`complete`); `close` ends it (on completion or
timeout): the robots that did not answer are *missing* (dropped, one more missed step each), a
missing controller command falls back to the last one (or s_g at the first step). Bad, late and
duplicate counts accumulate between recorded rows (`take_counts`), so what is heard after the last
row still reaches the run's totals (`pending`).

`ControlCycles` is the same bookkeeping for the control cycles of backends that integrate in lockstep
with the robots' cmd_vel (physics): after each pose publication every driving robot owes a cmd_vel.
`Phase` is the run's state: waiting -> running <-> paused -> done.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np


class Phase(enum.Enum):
    """The run: WAITING for the nodes to match (or 'start'), RUNNING, PAUSED by 'stop', DONE."""

    WAITING = "waiting"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"


class Verdict(enum.Enum):
    """What became of one answer (see the module docstring)."""

    APPLIED = "applied"
    LATE = "late"
    NOT_ANNOUNCED = "not_announced"
    DUPLICATE = "duplicate"
    OUT_OF_RANGE = "out_of_range"


@dataclass(frozen=True)
class Counts:
    """Answers counted, never applied, since the last recorded row."""

    bad: int = 0
    late: int = 0
    duplicate: int = 0


@dataclass(frozen=True)
class ClosedStep:
    """The end of step `step`: `missing` (n,) bool, robots that did not answer (dropped); the controller's
    command `a_g` (its answer, else the fallback) and whether it was missing."""

    step: int
    missing: np.ndarray
    a_g: int
    controller_missing: bool


class StepLedger:
    """Answer accounting of `n` robots and one controller over lockstep decision steps.

    Arrays (n,): `answered` (answer for the open step applied), `goals` (applied zone goal, -1 none),
    `owed` (live robots still owed an answer), `misses` (steps missed in a row).
    """

    def __init__(self, n: int, max_missed: int) -> None:
        if n < 1 or max_missed < 1:
            raise ValueError(f"StepLedger needs n >= 1 and max_missed >= 1, got {n}, {max_missed}")
        self.n, self.max_missed = n, max_missed
        self.step = 0  # the open step, or the next one to open
        self.open = False
        self.answered = np.zeros(n, dtype=bool)
        self.goals = np.full(n, -1, dtype=np.int64)
        self.owed = np.zeros(n, dtype=bool)
        self.misses = np.zeros(n, dtype=np.int64)
        self.a_g: int | None = None  # the controller's command for the open step
        self.controller_owed = False
        self.controller_misses = 0
        self.last_a_g: int | None = None
        self.reasked = -1  # the step whose tick was repeated: its answers beyond the first were invited, not faults
        self.invited: tuple[np.ndarray, bool] | None = None  # who had answered `reasked` when it closed
        self._bad = self._late = self._duplicate = 0

    # --- state ----------------------------------------------------------------------------------
    def live(self) -> np.ndarray:
        """(n,) bool: robots waited for (fewer than max_missed missed steps in a row)."""
        return self.misses < self.max_missed

    def controller_live(self) -> bool:
        return self.controller_misses < self.max_missed

    @property
    def announced(self) -> int:
        """The last step whose tick was published (-1 before the first)."""
        return self.step if self.open else self.step - 1

    def complete(self) -> bool:
        """The open step has every answer it waits for."""
        return self.open and not self.owed.any() and not self.controller_owed

    @property
    def pending(self) -> Counts:
        """Counts not yet taken into a row."""
        return Counts(self._bad, self._late, self._duplicate)

    # --- the step -------------------------------------------------------------------------------
    def begin(self) -> None:
        """Open step `step`: the live robots and a live controller are owed an answer."""
        self.open = True
        self.answered[:] = False
        self.goals[:] = -1
        self.owed = self.live().copy()
        self.a_g = None
        self.controller_owed = self.controller_live()

    def close(self, s_g: int) -> ClosedStep:
        """End the open step; missing robots and a missing controller get one more missed step. A missing
        command falls back to the last applied one, or `s_g` if there was none."""
        missing = ~self.answered
        self.misses[missing] += 1
        controller_missing = self.a_g is None
        if self.a_g is None:
            self.controller_misses += 1
            a_g = self.last_a_g if self.last_a_g is not None else s_g
        else:
            a_g = self.a_g
        self.last_a_g = a_g
        closed = ClosedStep(self.step, missing, a_g, controller_missing)
        if self.step == self.reasked:  # its later answers from these were asked for again, not late
            self.invited = (self.answered.copy(), not controller_missing)
        self.open = False
        self.step += 1
        return closed

    def abort(self) -> None:
        """Leave the open step without recording it (the run stops)."""
        self.open = False

    def ask_again(self) -> None:
        """The open step's tick was repeated: a second answer for it is what was asked for (not counted as
        duplicate, nor as late from those whose answer had arrived when the step closed)."""
        self.reasked = self.step

    def give_up_owed(self) -> np.ndarray:
        """Stop waiting for the robots (and controller) still owed: they count as dead until they answer.
        Returns their indices."""
        silent = np.flatnonzero(self.owed)
        self.misses[silent] = self.max_missed
        if self.controller_owed:
            self.controller_misses = self.max_missed
        return silent

    # --- answers --------------------------------------------------------------------------------
    def _classify(self, step: int, robots: np.ndarray | None) -> Verdict:
        """The verdict of answers for `step` from `robots` (None: the controller), counting late and bad ones."""
        if self.open and step == self.step:
            return Verdict.APPLIED
        count = 1 if robots is None else robots.size
        if step <= self.announced:
            if step == self.reasked and self.invited is not None:  # only who had not answered it is late
                answered, controller = self.invited
                count = int(not controller) if robots is None else int((~answered[robots]).sum())
            self._late += count
            return Verdict.LATE
        self._bad += count
        return Verdict.NOT_ANNOUNCED

    def take_goals(self, step: int, robots: np.ndarray, goals: np.ndarray) -> Verdict:
        """Zone goals [step] of `robots` (registry indices (m,), goals (m,)): each robot's first answer for
        the open step applies; the rest are duplicates. Returns the batch's verdict (APPLIED when it was
        for the open step, even if every answer in it was a duplicate)."""
        robots = np.asarray(robots, dtype=np.int64)
        goals = np.asarray(goals, dtype=np.int64)
        self.misses[robots] = 0  # heard from: alive, even if late
        verdict = self._classify(step, robots)
        if verdict is not Verdict.APPLIED:
            return verdict
        robots, first = np.unique(robots, return_index=True)  # np.unique sorts; `first` keeps the first goal
        repeats = goals.size - robots.size
        goals = goals[first]
        new = ~self.answered[robots]
        if step != self.reasked:
            self._duplicate += repeats + int((~new).sum())
        robots, goals = robots[new], goals[new]
        self.answered[robots] = True
        self.goals[robots] = goals
        self.owed[robots] = False
        return verdict

    def take_command(self, step: int, a_g: int, n_global_actions: int) -> Verdict:
        """The controller's zone command [step, a_g]: its first in-range command for the open step applies."""
        self.controller_misses = 0
        verdict = self._classify(step, None)
        if verdict is not Verdict.APPLIED:
            return verdict
        if self.a_g is not None:
            self._duplicate += int(step != self.reasked)
            return Verdict.DUPLICATE
        if not 0 <= a_g < n_global_actions:
            self._bad += 1
            return Verdict.OUT_OF_RANGE
        self.a_g = a_g
        self.controller_owed = False
        return verdict

    def count_bad(self, count: int) -> None:
        """Applied answers found unusable when the step was closed (e.g. a goal not one move away)."""
        self._bad += count

    def take_counts(self) -> Counts:
        """The counts since the last row (for the next recorded row); resets them."""
        counts = self.pending
        self._bad = self._late = self._duplicate = 0
        return counts


class ControlCycles:
    """Lockstep control cycles: after each pose publication, every driving robot (one that has answered a
    decision, with fewer than `max_missed` missed cycles in a row) owes a cmd_vel before the world moves."""

    def __init__(self, n: int, max_missed: int) -> None:
        self.max_missed = max_missed
        self.drivers = np.zeros(n, dtype=bool)  # robots that answered a decision (their node drives them)
        self.heard = np.zeros(n, dtype=bool)  # cmd_vel heard since the last pose publication
        self.owed = np.zeros(n, dtype=bool)
        self.misses = np.zeros(n, dtype=np.int64)
        self.t0 = 0.0  # when the cycle began
        self.dropped = 0  # cmd_vels owed and not heard, over the run

    def new_cycle(self, now: float) -> None:
        """Poses were published at `now`: the driving robots owe a cmd_vel."""
        self.heard[:] = False
        self.owed = self.drivers & (self.misses < self.max_missed)
        self.t0 = now

    def after_step(self, answered: np.ndarray) -> None:
        """A decision step closed: robots that answered drive; their cmd_vel for it may still be on its way."""
        self.drivers |= answered
        self.owed = answered & ~self.heard & (self.misses < self.max_missed)

    def take_cmd(self, j: int) -> bool:
        """Robot j's cmd_vel; returns whether it was the last one owed (the cycle can run now)."""
        self.heard[j] = True
        self.misses[j] = 0
        if self.owed[j]:
            self.owed[j] = False
            return not self.owed.any()
        return False

    def due(self, now: float, timeout: float) -> bool:
        """Every owed cmd_vel was heard, or `timeout` s passed since the cycle began."""
        return not self.owed.any() or now - self.t0 >= timeout

    def drop_owed(self) -> None:
        """The cycle runs without the cmd_vels still owed: count them and their robots' misses."""
        self.dropped += int(self.owed.sum())
        self.misses[self.owed] += 1
