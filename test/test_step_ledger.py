"""The simulator's step accounting without ROS (`altmarl_ros.ros.step_ledger`): every verdict and count.

test_ros_step_accounting.py drives the same accounting through a real SimNode; these cases are exact
and run without rclpy.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from altmarl_ros.ros.step_ledger import ControlCycles, Counts, Phase, StepLedger, Verdict

N, MAX_MISSED = 4, 3
S_G = 2


def _all(ledger: StepLedger, step: int, goal: int = 7) -> None:
    """Every robot answers `step` with `goal`, and the controller with command 1."""
    assert ledger.take_goals(step, np.arange(N), np.full(N, goal)) is Verdict.APPLIED
    assert ledger.take_command(step, 1, 5) is Verdict.APPLIED


def test_the_ledger_imports_no_rclpy():
    code = "import sys, altmarl_ros.ros.step_ledger; assert 'rclpy' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_owed_answered_and_complete():
    ledger = StepLedger(N, MAX_MISSED)
    assert not ledger.open and ledger.announced == -1 and not ledger.complete()
    ledger.begin()
    assert ledger.open and ledger.step == 0 and ledger.announced == 0
    assert ledger.owed.all() and ledger.controller_owed and not ledger.answered.any()
    assert ledger.take_goals(0, np.array([2, 0]), np.array([5, 6])) is Verdict.APPLIED
    assert ledger.owed.tolist() == [False, True, False, True] and ledger.goals.tolist() == [6, -1, 5, -1]
    assert not ledger.complete()
    assert ledger.take_goals(0, np.array([1, 3]), np.array([1, 2])) is Verdict.APPLIED
    assert not ledger.complete()  # the controller still owes its command
    assert ledger.take_command(0, 4, 5) is Verdict.APPLIED
    assert ledger.complete() and ledger.a_g == 4
    closed = ledger.close(S_G)
    assert (closed.step, closed.a_g, closed.controller_missing) == (0, 4, False) and not closed.missing.any()
    assert not ledger.open and ledger.step == 1 and ledger.announced == 0
    assert ledger.take_counts() == Counts(0, 0, 0)


def test_missing_robots_are_dropped_and_no_longer_waited_for_after_max_missed():
    ledger = StepLedger(N, MAX_MISSED)
    for step in range(MAX_MISSED):
        ledger.begin()
        assert ledger.owed.tolist() == [True, True, True, True]
        ledger.take_goals(step, np.array([0, 1, 2]), np.zeros(3))
        ledger.take_command(step, 0, 5)
        assert not ledger.complete()  # robot 3 is owed
        closed = ledger.close(S_G)
        assert closed.missing.tolist() == [False, False, False, True]
    assert ledger.misses.tolist() == [0, 0, 0, MAX_MISSED] and ledger.live().tolist() == [True, True, True, False]
    ledger.begin()
    assert ledger.owed.tolist() == [True, True, True, False]  # not waited for any more
    ledger.take_goals(MAX_MISSED, np.array([0, 1, 2]), np.zeros(3))
    ledger.take_command(MAX_MISSED, 0, 5)
    assert ledger.complete()
    assert ledger.close(S_G).missing.tolist() == [False, False, False, True]  # still counted as dropped


def test_a_revived_robot_is_waited_for_again_but_cannot_stand_in_for_a_live_one():
    ledger = StepLedger(N, MAX_MISSED)
    ledger.misses[0] = MAX_MISSED  # given up as dead
    ledger.begin()
    assert not ledger.owed[0]
    ledger.take_command(0, 0, 5)
    assert ledger.take_goals(0, np.array([0]), np.array([3])) is Verdict.APPLIED  # answers again
    assert ledger.misses[0] == 0 and ledger.goals[0] == 3
    ledger.take_goals(0, np.array([1, 2]), np.zeros(2))
    assert not ledger.complete()  # robot 3 is live and owes its answer
    ledger.take_goals(0, np.array([3]), np.zeros(1))
    assert ledger.complete() and not ledger.close(S_G).missing.any()
    assert ledger.live().all()


def test_late_answers_during_the_next_step_and_between_steps():
    ledger = StepLedger(N, MAX_MISSED)
    ledger.begin()
    ledger.take_command(0, 0, 5)
    ledger.take_goals(0, np.array([0, 1, 2]), np.zeros(3))
    ledger.close(S_G)
    ledger.misses[3] = MAX_MISSED  # say robot 3 was given up; its late answer still makes it live again
    assert ledger.take_goals(0, np.array([3]), np.zeros(1)) is Verdict.LATE  # between steps
    assert ledger.misses[3] == 0
    assert ledger.take_command(0, 2, 5) is Verdict.LATE
    ledger.begin()
    assert ledger.take_goals(0, np.array([2, 1]), np.zeros(2)) is Verdict.LATE  # during step 1
    assert not ledger.answered.any() and ledger.goals.tolist() == [-1] * N  # never applied
    assert ledger.pending == Counts(bad=0, late=4, duplicate=0)
    assert ledger.take_counts() == Counts(bad=0, late=4, duplicate=0)
    assert ledger.pending == Counts()  # taken into the row


def test_duplicates_within_a_batch_across_batches_and_from_the_controller():
    ledger = StepLedger(N, MAX_MISSED)
    ledger.begin()
    assert ledger.take_goals(0, np.array([1, 1, 0]), np.array([5, 6, 7])) is Verdict.APPLIED
    assert ledger.goals[1] == 5  # the first answer in the batch applies
    assert ledger.take_goals(0, np.array([1, 2]), np.array([9, 8])) is Verdict.APPLIED
    assert ledger.goals[1] == 5 and ledger.goals[2] == 8  # the first answer of the step applies
    assert ledger.take_command(0, 3, 5) is Verdict.APPLIED
    assert ledger.take_command(0, 1, 5) is Verdict.DUPLICATE and ledger.a_g == 3
    assert ledger.take_command(0, 99, 5) is Verdict.DUPLICATE  # a second command, whatever its value
    assert ledger.pending == Counts(bad=0, late=0, duplicate=4)


def test_answers_to_a_repeated_tick_are_not_faults_but_still_apply_once():
    """The first step's tick repeated (`ask_again`): the second answers it invites, during the step or after it
    closed, are neither duplicates nor late; the first answer of each still applies; other steps count as before."""
    ledger = StepLedger(N, MAX_MISSED)
    ledger.begin()
    ledger.take_goals(0, np.array([0]), np.array([4]))
    ledger.take_command(0, 2, 5)
    ledger.ask_again()
    assert ledger.take_goals(0, np.array([0, 1]), np.array([6, 7])) is Verdict.APPLIED
    assert ledger.take_command(0, 3, 5) is Verdict.DUPLICATE and ledger.a_g == 2
    assert ledger.goals[:2].tolist() == [4, 7] and ledger.pending == Counts()
    ledger.take_goals(0, np.arange(2, N), np.zeros(N - 2))
    ledger.close(s_g=0)
    ledger.begin()
    assert ledger.take_goals(0, np.array([3]), np.zeros(1)) is Verdict.LATE and ledger.pending == Counts()
    ledger.take_command(1, 1, 5)
    assert ledger.take_command(1, 1, 5) is Verdict.DUPLICATE  # step 1 was not asked again
    assert ledger.pending == Counts(bad=0, late=0, duplicate=1)


def test_a_first_answer_to_a_repeated_tick_after_its_step_closed_is_late():
    """Only the answers of those whose answer had arrived before the repeated step closed were asked for again:
    a robot (or controller) that missed that step and answers it afterwards is late, as for any other step."""
    ledger = StepLedger(N, MAX_MISSED)
    ledger.begin()
    ledger.ask_again()
    ledger.take_goals(0, np.arange(2), np.zeros(2))  # robots 2 and 3 and the controller never answer step 0
    closed = ledger.close(s_g=0)
    assert closed.missing.tolist() == [False, False, True, True] and closed.controller_missing
    ledger.begin()
    assert ledger.take_goals(0, np.arange(N), np.zeros(N)) is Verdict.LATE  # 0, 1 invited; 2, 3 late
    assert ledger.take_command(0, 1, 5) is Verdict.LATE
    assert ledger.pending == Counts(bad=0, late=3, duplicate=0)


def test_bad_answers_not_announced_out_of_range_and_unusable():
    ledger = StepLedger(N, MAX_MISSED)
    assert ledger.take_goals(0, np.array([0]), np.zeros(1)) is Verdict.NOT_ANNOUNCED  # before any tick
    ledger.begin()
    assert ledger.take_goals(1, np.arange(N), np.zeros(N)) is Verdict.NOT_ANNOUNCED  # step 1 during step 0
    assert ledger.owed.all()  # not applied
    assert ledger.take_command(1, 0, 5) is Verdict.NOT_ANNOUNCED
    assert ledger.take_command(0, 5, 5) is Verdict.OUT_OF_RANGE and ledger.controller_owed
    assert ledger.take_command(0, -1, 5) is Verdict.OUT_OF_RANGE and ledger.a_g is None
    assert ledger.take_command(0, 4, 5) is Verdict.APPLIED and not ledger.controller_owed  # a valid one still applies
    ledger.count_bad(2)  # e.g. goals found not one move away when the step closes
    assert ledger.take_counts() == Counts(bad=1 + N + 1 + 2 + 2, late=0, duplicate=0)


def test_the_missing_controller_command_falls_back_to_the_last_one_then_to_s_g():
    ledger = StepLedger(N, MAX_MISSED)
    ledger.begin()
    ledger.take_goals(0, np.arange(N), np.zeros(N))
    assert not ledger.complete()
    closed = ledger.close(S_G)
    assert closed.controller_missing and closed.a_g == S_G and ledger.controller_misses == 1
    ledger.begin()
    _all(ledger, 1)
    assert ledger.close(S_G).a_g == 1 and ledger.controller_misses == 0
    ledger.begin()
    closed = ledger.close(0)
    assert closed.controller_missing and closed.a_g == 1  # the last command is held
    for _ in (3, 4):
        ledger.begin()
        ledger.close(0)
    assert not ledger.controller_live()
    ledger.begin()
    assert not ledger.controller_owed  # not waited for; its next answer makes it live again
    ledger.take_command(5, 2, 5)
    assert ledger.controller_live() and ledger.a_g == 2


def test_giving_up_the_owed_and_aborting():
    ledger = StepLedger(N, MAX_MISSED)
    ledger.begin()
    ledger.take_goals(0, np.array([0, 1]), np.zeros(2))
    assert ledger.give_up_owed().tolist() == [2, 3]
    assert not ledger.controller_live() and ledger.live().tolist() == [True, True, False, False]
    closed = ledger.close(S_G)
    assert closed.missing.tolist() == [False, False, True, True] and int(ledger.live().sum()) == 2
    ledger.begin()
    assert ledger.owed.tolist() == [True, True, False, False] and not ledger.controller_owed
    ledger.abort()
    assert not ledger.open and ledger.step == 1  # the aborted step is not counted


def test_control_cycles_owe_a_cmd_vel_per_driving_robot():
    cycles = ControlCycles(N, MAX_MISSED)
    cycles.new_cycle(10.0)
    assert not cycles.owed.any() and cycles.due(10.0, 1.0)  # nobody drives yet
    cycles.after_step(np.array([True, True, False, True]))
    assert cycles.owed.tolist() == [True, True, False, True]
    assert cycles.take_cmd(3) is False  # robot 3's cmd_vel for the decision's poses
    cycles.new_cycle(20.0)
    assert cycles.owed.tolist() == [True, True, False, True] and not cycles.due(20.5, 1.0)
    assert cycles.take_cmd(2) is False and cycles.owed.tolist() == [True, True, False, True]  # not a driver
    assert cycles.take_cmd(0) is False
    assert cycles.take_cmd(1) is False  # robot 3 still owes
    assert cycles.due(21.0, 1.0)  # ... until the timeout
    cycles.drop_owed()
    assert cycles.dropped == 1 and cycles.misses.tolist() == [0, 0, 0, 1]
    cycles.new_cycle(22.0)
    for j in (0, 1):
        cycles.take_cmd(j)
    assert cycles.take_cmd(3) is True and cycles.due(22.0, 1.0)  # the last one owed: the cycle runs now
    cycles.misses[1] = MAX_MISSED
    cycles.new_cycle(23.0)
    assert cycles.owed.tolist() == [True, False, False, True]  # robot 1 is no longer waited for


def test_a_cmd_vel_heard_before_the_step_closes_is_not_owed_again():
    cycles = ControlCycles(N, MAX_MISSED)
    cycles.new_cycle(0.0)
    cycles.take_cmd(0)
    cycles.after_step(np.array([True, True, False, False]))
    assert cycles.owed.tolist() == [False, True, False, False]


@pytest.mark.parametrize("n, max_missed", [(0, 3), (3, 0)])
def test_a_ledger_needs_robots_and_a_positive_miss_limit(n, max_missed):
    with pytest.raises(ValueError, match="StepLedger needs"):
        StepLedger(n, max_missed)


def test_phase_values_are_the_documented_names():
    assert [p.value for p in Phase] == ["waiting", "running", "paused", "done"]
