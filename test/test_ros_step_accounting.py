"""sim_node's step accounting, driven answer by answer on a real node (no spinning, no timing).

The node is a real SimNode in its own rclpy context; the test feeds it answers through the same
callbacks its subscriptions use and ends steps the way its timeout does, so every case is exact:
a robot given up as dead that answers again, a late answer, a duplicate answer, an answer for a
step that was not announced yet.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")

N = 4


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    from altmarl_ros.ros.heuristics import save_heuristic

    return save_heuristic(tmp_path_factory.mktemp("policy") / "policy.npz", k=2)


@pytest.fixture
def make_sim(ros_domain, policy):
    """SimNode(**extra parameters) factories in one rclpy context, destroyed after the test."""
    import rclpy
    from rclpy.context import Context
    from rclpy.parameter import Parameter

    from altmarl_ros.ros.sim_node import SimNode

    context = Context()
    rclpy.init(args=[], context=context)
    nodes = []

    def make(**extra):
        params = [Parameter("n_robots", value=N), Parameter("policy_path", value=str(policy)),
                  Parameter("autostart", value=False), Parameter("step_period", value=0.0)]
        params += [Parameter(name, value=value) for name, value in extra.items()]
        nodes.append(SimNode(context=context, parameter_overrides=params))
        return nodes[-1]

    try:
        yield make
    finally:
        for node in nodes:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown(context=context)


@pytest.fixture
def sim(make_sim):
    return make_sim()


def _goals(sim, step: int, robots: list[int]) -> None:
    """Robots answer [step] with 'stay' (their current zone), batched as a robot host does."""
    from altmarl_ros.ros import topics

    robots_a = np.array(robots)
    sim._on_goals(topics.goals_msg(step, robots_a, sim.snap.s_l[robots_a]))


def _command(sim, step: int) -> None:
    from altmarl_ros.ros import topics

    sim._on_command(topics.answer_msg(step, 0, "a_g"))


def _total(sim, field: str) -> int:
    return int(sum(row[field] for row in sim.record))


def test_a_revived_robot_does_not_end_the_step_before_the_live_ones_answered(sim):
    sim.ledger.misses[0] = sim.params.max_missed  # robot 0 was given up as dead
    sim._begin_step()
    _command(sim, 0)
    _goals(sim, 0, [0])  # ... and answers again
    _goals(sim, 0, [1, 2])
    assert sim.record == []  # robot 3 is live and still owes its answer
    _goals(sim, 0, [3])
    assert len(sim.record) == 1 and sim.record[0]["dropped_robots"] == 0
    assert sim.record[0]["live_robots"] == N  # robot 0 is waited for again


def test_an_answer_heard_between_steps_is_counted_late(sim):
    sim._begin_step()
    _command(sim, 0)
    _goals(sim, 0, [0, 1, 2])
    sim._finish_step()  # the step timed out without robot 3
    assert sim.record[0]["dropped_robots"] == 1
    _goals(sim, 0, [3])  # robot 3's answer for step 0 arrives before step 1 begins
    sim._begin_step()
    _command(sim, 1)
    _goals(sim, 0, [2])  # and robot 2's again during step 1
    _goals(sim, 1, [0, 1, 2, 3])
    assert len(sim.record) == 2 and sim.record[1]["dropped_robots"] == 0
    assert _total(sim, "late_answers") == 2
    _goals(sim, 1, [0])  # after the last recorded step: still in the run's total
    assert sim.summary()["late_answers"] == 3


def test_a_duplicate_answer_is_counted_and_the_first_one_applies(sim):
    sim._begin_step()
    zones = sim.snap.s_l.copy()
    _command(sim, 0)
    _goals(sim, 0, [0, 1])
    from altmarl_ros.ros import topics
    sim._on_goals(topics.goals_msg(0, np.array([1]), np.array([(zones[1] + 1) % 5])))  # robot 1 again
    _command(sim, 0)  # the controller too
    assert sim.ledger.goals[1] == zones[1] and sim.record == []
    _goals(sim, 0, [2, 3])
    assert sim.record[0]["duplicate_answers"] == 2
    assert sim.record[0]["bad_answers"] == 0


def test_an_answer_for_a_step_not_yet_announced_is_rejected(sim):
    sim._begin_step()
    _command(sim, 0)
    _goals(sim, 1, [0, 1, 2, 3])  # claims step 1 during step 0
    assert sim.record == []  # nobody has answered step 0
    _goals(sim, 0, [0, 1, 2, 3])
    assert sim.record[0]["bad_answers"] == N and sim.record[0]["dropped_robots"] == 0
    _goals(sim, 2, [1])  # between steps (step 1 not begun): also a step not yet announced
    sim._begin_step()
    _command(sim, 1)
    _goals(sim, 1, [0, 1, 2, 3])
    assert sim.record[1]["bad_answers"] == 1


# --- the first step is a handshake: every robot and the controller must answer it ---------------
def _age(sim, seconds: float) -> None:
    """Let `seconds` pass on the node's clocks (the start and the step's start), without waiting."""
    from altmarl_ros.ros.step_ledger import Phase

    sim.phase = Phase.RUNNING  # as after autostart or 'start'
    sim.t_start -= seconds
    sim.step_t0 -= seconds


def test_the_first_step_waits_for_every_robot_beyond_the_step_timeout(sim):
    sim._begin_step()
    _command(sim, 0)
    _goals(sim, 0, [0, 1, 2])
    _age(sim, 10 * sim.params.step_timeout)  # far past the step timeout, within the startup budget
    sim._loop()
    assert sim.record == [] and not sim.done
    _goals(sim, 0, [3])
    assert len(sim.record) == 1 and sim.record[0]["dropped_robots"] == 0


def test_robots_that_never_answer_the_first_step_stop_the_run_naming_them(sim):
    sim._begin_step()
    _command(sim, 0)
    _goals(sim, 0, [0, 1])
    _age(sim, sim.params.startup_timeout + 1)
    sim._loop()
    assert sim.done and sim.exit_code == 3 and sim.record == []
    assert sim.summary()["lost_robots"] == {"no node publishes its zone_goal": ["robot_2", "robot_3"]}


def test_tolerated_lost_robots_are_no_longer_waited_for(make_sim):
    sim = make_sim(tolerate_lost_robots=True)
    sim._begin_step()
    _command(sim, 0)
    _goals(sim, 0, [0, 1])
    _age(sim, sim.params.startup_timeout + 1)
    sim._loop()
    assert not sim.done and sim.record[0]["dropped_robots"] == 2 and sim.record[0]["live_robots"] == 2
    sim._begin_step()
    _command(sim, 1)
    _goals(sim, 1, [0, 1])
    assert len(sim.record) == 2  # robots 2 and 3 are not owed an answer any more
    assert set(sim.summary()["lost_robots"]) == {"no node publishes its zone_goal"}
