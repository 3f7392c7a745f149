"""RViz / Foxglove view of the swarm: one `visualization_msgs/MarkerArray` on /swarm/markers per update.

Namespaces (fixed ids, so each update replaces the last; frame: the zones' frame_id):
- `zones`: a flat disc per zone in its colour; the active zone s_g opaque, the others faint;
- `zone_names`: "zone i: <robots>" above each zone;
- `active` / `command`: a gold ring on s_g, a black ring on the controller's commanded zone a_g;
- `robots`: one POINTS marker, each robot a point in the colour of its zone;
- `goals`: one LINE_LIST marker, a segment from each robot sent to another zone towards that zone's centre.

`MarkerThrottle` limits updates to a rate (Hz; 0 = off) so that 1000 robots cost nothing measurable per step
(bench/markers.py). Colours are altmarl_ros.swarmview's, the video's.
"""

from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from altmarl_ros.swarmview import zone_colours
from altmarl_ros.zones import Zones

TOPIC = "/swarm/markers"
DISC_HEIGHT = 0.02  # m
POINT_SIZE = 0.12  # m
TEXT_HEIGHT = 0.35  # m
GOAL_LENGTH = 0.35  # m, length of a robot's goal segment


class MarkerThrottle:
    """`due(now_s)`: True at most `rate_hz` times per second (of the clock passed in); rate 0 = never."""

    def __init__(self, rate_hz: float) -> None:
        if rate_hz < 0 or not math.isfinite(rate_hz):
            raise ValueError(f"marker rate must be >= 0 Hz, got {rate_hz}")
        self.period = 1.0 / rate_hz if rate_hz > 0 else math.inf
        self.next = -math.inf

    def due(self, now_s: float) -> bool:
        if self.period == math.inf or now_s < self.next:
            return False
        cadence = self.next + self.period  # keeps the rate without drift; after a gap, restarts from now
        self.next = cadence if cadence > now_s else now_s + self.period
        return True


def _colour(rgb, alpha: float) -> ColorRGBA:
    return ColorRGBA(r=float(rgb[0]), g=float(rgb[1]), b=float(rgb[2]), a=float(alpha))


def _marker(ns: str, mid: int, kind: int, stamp: Time, frame_id: str) -> Marker:
    m = Marker(ns=ns, id=mid, type=kind, action=Marker.ADD, frame_locked=False)
    m.header.stamp, m.header.frame_id = stamp, frame_id
    m.pose.orientation.w = 1.0
    return m


def _ring(ns: str, centre, radius: float, rgb, width: float, stamp: Time, frame_id: str) -> Marker:
    m = _marker(ns, 0, Marker.LINE_STRIP, stamp, frame_id)
    angle = np.linspace(0, 2 * np.pi, 41)
    m.points = [Point(x=float(centre[0] + radius * c), y=float(centre[1] + radius * s), z=DISC_HEIGHT)
                for c, s in zip(np.cos(angle), np.sin(angle), strict=True)]
    m.scale.x = width
    m.color = _colour(rgb, 1.0)
    return m


def zone_markers(zones: Zones, s_g: int, a_g: int, counts: np.ndarray, stamp: Time) -> list[Marker]:
    """Discs, names with counts, the active zone's and the commanded zone's rings."""
    frame, colours, out = zones.frame_id, zone_colours(np.arange(zones.n_zones)), []
    for z, (x, y) in enumerate(zones.centres.tolist()):
        disc = _marker("zones", z, Marker.CYLINDER, stamp, frame)
        disc.pose.position.x, disc.pose.position.y = x, y
        disc.scale.x = disc.scale.y = 2 * zones.zone_radius
        disc.scale.z = DISC_HEIGHT
        disc.color = _colour(colours[z], 0.6 if z == s_g else 0.2)
        name = _marker("zone_names", z, Marker.TEXT_VIEW_FACING, stamp, frame)
        name.pose.position.x, name.pose.position.y, name.pose.position.z = x, y + 1.3 * zones.zone_radius, 0.3
        name.scale.z = TEXT_HEIGHT
        name.color = _colour((0.1, 0.1, 0.1), 1.0)
        name.text = f"zone {z}: {int(counts[z])}"
        out += [disc, name]
    out.append(_ring("active", zones.centres[s_g], 1.08 * zones.zone_radius, (1.0, 0.84, 0.0), 0.12, stamp, frame))
    if 0 <= a_g < zones.n_zones:
        out.append(_ring("command", zones.centres[a_g], 1.22 * zones.zone_radius, (0.0, 0.0, 0.0), 0.05, stamp,
                         frame))
    else:
        out.append(Marker(ns="command", id=0, action=Marker.DELETE))
    return out


def robot_markers(zones: Zones, xy: np.ndarray, zone: np.ndarray, goal: np.ndarray, stamp: Time) -> list[Marker]:
    """xy (n, 2) positions, zone (n,) and goal (n,) zone ids (-1 unknown) -> the `robots` and `goals` markers."""
    points = _marker("robots", 0, Marker.POINTS, stamp, zones.frame_id)
    points.scale.x = points.scale.y = POINT_SIZE
    z = np.full(xy.shape[0], 2 * DISC_HEIGHT)
    points.points = [Point(x=x, y=y, z=h) for x, y, h in zip(xy[:, 0].tolist(), xy[:, 1].tolist(), z.tolist(),
                                                              strict=True)]
    points.colors = [ColorRGBA(r=r, g=g, b=b, a=1.0) for r, g, b in zone_colours(zone).tolist()]
    lines = _marker("goals", 0, Marker.LINE_LIST, stamp, zones.frame_id)
    lines.scale.x = 0.03
    lines.color = _colour((0.3, 0.3, 0.3), 0.8)
    away = np.flatnonzero((goal >= 0) & (goal < zones.n_zones) & (goal != zone))
    if away.size:
        start = xy[away]
        delta = zones.centres[goal[away]] - start
        end = start + GOAL_LENGTH * delta / np.maximum(np.linalg.norm(delta, axis=-1, keepdims=True), 1e-9)
        ends = np.stack([start, end], 1).reshape(-1, 2).tolist()
        lines.points = [Point(x=x, y=y, z=2 * DISC_HEIGHT) for x, y in ends]
    return [points, lines]


def swarm_markers(zones: Zones, *, s_g: int, a_g: int, xy: np.ndarray, zone: np.ndarray, goal: np.ndarray,
                  stamp: Time) -> MarkerArray:
    """The whole view of one moment (see the module docstring); a_g = -1 when no command is known yet."""
    counts = np.bincount(zone[zone >= 0], minlength=zones.n_zones)
    return MarkerArray(markers=zone_markers(zones, s_g, a_g, counts, stamp)
                       + robot_markers(zones, np.asarray(xy, dtype=np.float64), np.asarray(zone), np.asarray(goal),
                                       stamp))


class MarkerPublisher:
    """The simulator's /swarm/markers: `maybe_publish(...)` once per decision step builds and publishes the view
    when the throttle allows and someone listens (a subscriber, or the bag): unwatched, it costs one check."""

    def __init__(self, node, zones: Zones, rate_hz: float) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        self.zones, self.throttle = zones, MarkerThrottle(rate_hz)
        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)  # best-effort viewers match it too
        self.pub = node.create_publisher(MarkerArray, TOPIC, qos) if rate_hz > 0 else None
        self.published = 0

    def maybe_publish(self, now_s: float, *, s_g: int, a_g: int, xy: np.ndarray, zone: np.ndarray, goal: np.ndarray,
                      stamp: Time, bag=None) -> bool:
        if self.pub is None or (bag is None and self.pub.get_subscription_count() == 0) or not self.throttle.due(now_s):
            return False
        msg = swarm_markers(self.zones, s_g=s_g, a_g=a_g, xy=xy, zone=zone, goal=goal, stamp=stamp)
        self.pub.publish(msg)
        if bag is not None:
            bag.write(TOPIC, msg)
        self.published += 1
        return True
