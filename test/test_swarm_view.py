"""Watching the swarm: the frames read from a real run's bag, the top-down video (frame count, size, views) and
the RViz/Foxglove markers (built, recorded into a bag, decoded with rosbags)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from altmarl_ros.swarmview import SwarmFrames, ViewError, read_frames
from altmarl_ros.zones import Zones, load_zones

ROOT = Path(__file__).resolve().parents[1]
N, STEPS = 6, 12


def _count(path: Path) -> tuple[int, tuple[int, int]]:
    import imageio_ffmpeg

    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    reader = imageio_ffmpeg.read_frames(str(path))
    size = tuple(next(reader)["size"])
    reader.close()
    return frames, size


@pytest.fixture(scope="module")
def kinematic_run(ros_domain, tmp_path_factory) -> Path:
    """A short kinematic run of `altmarl swarm --video` (which records the bag; every node in one process), markers
    at 50 Hz: every step's."""
    from altmarl_ros.ros.heuristics import save_heuristic

    out = tmp_path_factory.mktemp("kinematic")
    policy = save_heuristic(out / "policy.npz", k=3)
    cmd = [sys.executable, "-m", "altmarl_ros.ros.swarm", "--n-robots", str(N), "--k", "3", "--steps", str(STEPS),
           "--mode", "kinematic", "--step-period", "0.5", "--policy", str(policy), "--out", str(out),
           "--video", str(out / "run.mp4"), "--marker-rate", "50", "--single-process", "--no-plots",
           "--numpy-episodes", "10"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return out


@pytest.fixture(scope="module")
def kinematic_bag(kinematic_run) -> Path:
    return kinematic_run / "bag"


def test_swarm_video(kinematic_run):
    """`altmarl swarm --video`: one frame per decision step, at the default 640 x 640."""
    assert _count(kinematic_run / "run.mp4") == (STEPS, (640, 640))


def test_simulator_markers_are_in_the_bag(kinematic_run):
    """sim_node's /swarm/markers, recorded in the run's bag: one per step (50 Hz > the step rate), every robot."""
    import json

    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    with AnyReader([kinematic_run / "bag"], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        conns = [c for c in reader.connections if c.topic == "/swarm/markers"]
        assert conns and conns[0].msgtype == "visualization_msgs/msg/MarkerArray"
        arrays = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages(connections=conns)]
    assert len(arrays) == STEPS
    for msg in arrays:
        assert sum(len(m.points) for m in msg.markers if m.ns == "robots") == N
    summary = json.loads((kinematic_run / "summary.json").read_text())
    assert summary["ros_domain_source"] == "environment"  # the test's private domain was kept


def test_frames_from_a_kinematic_bag(kinematic_bag):
    frames = read_frames(kinematic_bag, load_zones(ROOT / "config" / "zones.yaml"))
    assert frames.steps.tolist() == list(range(STEPS)) and frames.n_robots == N
    assert np.isfinite(frames.xy).all() and (frames.zone >= 0).all()
    assert np.isfinite(frames.reward).all() and (frames.a_g >= 0).all()
    assert not frames.placed(), "kinematic robots drive: their offsets from the zone centres change"
    assert frames.occupancy().sum(1).tolist() == [N] * STEPS


def test_replay_video_of_a_bag_has_a_frame_per_step(kinematic_bag, tmp_path):
    """`altmarl replay BAG --video FILE.mp4 --size 320 --fps 5`."""
    from altmarl_ros.cli import main

    out = tmp_path / "run.mp4"
    assert main(["replay", str(kinematic_bag), "--video", str(out), "--size", "320", "--fps", "5"]) == 0
    assert _count(out) == (STEPS, (320, 320))
    assert not list(tmp_path.glob(".*.tmp*")), "temporary file left behind"


def _placed_frames(T: int = 7, n: int = 30) -> SwarmFrames:
    """Model-mode-like frames: robots at their zone centre plus a fixed offset, zones drawn at random."""
    zones, rng = Zones(), np.random.default_rng(0)
    zone = rng.integers(0, zones.n_zones, size=(T, n))
    offset = rng.uniform(-0.3, 0.3, size=(n, 2))
    return SwarmFrames(steps=np.arange(T), s_g=zone[:, 0], a_g=np.full(T, -1), reward=np.full(T, np.nan),
                       xy=zones.centres[zone] + offset, zone=zone, goal=np.full((T, n), -1), zones=zones)


def test_placed_robots_get_the_occupancy_view(tmp_path):
    from altmarl_ros.video import render_video

    frames = _placed_frames()
    assert frames.placed()
    info = render_video(frames, tmp_path / "model.mp4", size=160, progress=False)
    assert (info.view, info.frames) == ("occupancy", 7)
    assert _count(tmp_path / "model.mp4") == (7, (160, 160))


def test_video_arguments_are_checked(tmp_path):
    from altmarl_ros.video import main, render_video

    with pytest.raises(ValueError, match="multiple of 16"):
        render_video(_placed_frames(), tmp_path / "x.mp4", size=100)
    with pytest.raises(ValueError, match="view must be one of"):
        render_video(_placed_frames(), tmp_path / "x.mp4", view="side")
    assert main([str(tmp_path), "--video", str(tmp_path / "x.mp4")]) == 2  # not a bag
    with pytest.raises(ViewError, match="not a rosbag2 directory"):
        read_frames(tmp_path, Zones())


def test_markers_decode_from_a_bag(tmp_path):
    """The markers of one moment, recorded by the package's BagRecorder and read back by rosbags."""
    pytest.importorskip("visualization_msgs", reason="ros-kilted-visualization-msgs is not installed")
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    from altmarl_ros.ros.bag import BagRecorder
    from altmarl_ros.ros.markers import TOPIC, MarkerThrottle, swarm_markers
    from altmarl_ros.ros.topics import ns_to_stamp

    zones, n = Zones(), 40
    zone = np.arange(n) % zones.n_zones
    xy = zones.centres[zone] + 0.1
    goal = (zone + 1) % zones.n_zones
    goal[::2] = zone[::2]  # half stay, half are sent to the next zone
    recorder = BagRecorder(tmp_path / "bag")
    recorder.write(TOPIC, swarm_markers(zones, s_g=2, a_g=3, xy=xy, zone=zone, goal=goal, stamp=ns_to_stamp(5)))
    recorder.close()
    with AnyReader([tmp_path / "bag"], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
        (conn,) = reader.connections
        assert (conn.topic, conn.msgtype) == (TOPIC, "visualization_msgs/msg/MarkerArray")
        (msg,) = [reader.deserialize(raw, conn.msgtype) for _, _, raw in reader.messages()]
    by_ns: dict[str, list] = {}
    for m in msg.markers:
        by_ns.setdefault(m.ns, []).append(m)
    assert len(by_ns["zones"]) == len(by_ns["zone_names"]) == zones.n_zones
    assert np.allclose([m.color.a for m in by_ns["zones"]], [0.6 if z == 2 else 0.2 for z in range(zones.n_zones)])
    assert by_ns["zone_names"][0].text == f"zone 0: {n // zones.n_zones}"
    robots = by_ns["robots"]
    assert [len(m.points) for m in robots] == np.bincount(zone, minlength=zones.n_zones).tolist()
    assert np.allclose([(p.x, p.y) for m in robots for p in m.points], xy[np.argsort(zone, kind="stable")])
    assert len({(m.color.r, m.color.g, m.color.b) for m in robots}) == zones.n_zones
    arrows = [m for m in by_ns["goals"] if m.action == 0]  # ADD; the other pairs are DELETEs
    pairs = {(int(zone[i]), int(goal[i])) for i in range(n) if goal[i] != zone[i]}
    assert sorted(divmod(m.id, zones.n_zones) for m in arrows) == sorted(pairs)
    assert len(by_ns["goals"]) == zones.n_zones * (zones.n_zones - 1)
    assert {m.header.frame_id for m in msg.markers if m.action == 0} == {zones.frame_id}
    active, command = by_ns["active"][0], by_ns["command"][0]
    assert np.allclose(np.mean([(p.x, p.y) for p in active.points[:-1]], 0), zones.centres[2], atol=1e-6)
    assert np.allclose(np.mean([(p.x, p.y) for p in command.points[:-1]], 0), zones.centres[3], atol=1e-6)
    throttle = MarkerThrottle(2.0)
    assert [throttle.due(t) for t in (0.0, 0.1, 0.49, 0.5, 0.6, 1.2)] == [True, False, False, True, False, True]
    assert not MarkerThrottle(0.0).due(0.0)


def _panels(tree) -> list[str]:
    return [tree] if isinstance(tree, str) else _panels(tree["first"]) + _panels(tree["second"])


def test_foxglove_layout_shows_markers_reward_and_latency():
    """config/foxglove_swarm.json: every panel of the layout tree is configured; the 3D panel shows the markers;
    the plots index /swarm/metrics' fields where the contract puts reward and the controller's round trip."""
    import json
    import re

    from altmarl_ros.ros.markers import TOPIC
    from altmarl_ros.ros.topics import METRICS, METRICS_FIELDS

    layout = json.loads((ROOT / "config" / "foxglove_swarm.json").read_text())
    panels = _panels(layout["layout"])
    assert sorted(panels) == sorted(layout["configById"])
    scene = layout["configById"]["3D!swarm"]
    assert scene["topics"][TOPIC]["visible"] and scene["followTf"] == Zones().frame_id
    plotted = {}
    for panel in panels:
        for path in layout["configById"][panel].get("paths", []):
            m = re.fullmatch(rf"{METRICS}\.data\[(\d+)\]", path["value"])
            assert m and int(m.group(1)) < len(METRICS_FIELDS), path
            plotted[METRICS_FIELDS[int(m.group(1))]] = panel
    assert plotted["reward"] == "Plot!reward" and plotted["controller_rtt_ms"] == "Plot!latency"
