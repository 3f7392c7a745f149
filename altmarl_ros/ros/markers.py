"""RViz / Foxglove view of the swarm: one `visualization_msgs/MarkerArray` on /swarm/markers per update.

Namespaces (fixed ids, so each update replaces the last; frame: the zones' frame_id):
- `zones`: a flat disc per zone in its colour; the active zone s_g opaque, the others faint;
- `zone_names`: "zone i: <robots>" above each zone;
- `active` / `command`: a gold ring on s_g, a black ring on the controller's commanded zone a_g;
- `robots`: a POINTS marker per zone, each of its robots a point in the zone's colour;
- `goals`: the robots' commanded goals as flows: an arrow from zone z to zone g, as wide as the share of the
  robots sent from z to g this step.

`MarkerThrottle` limits updates to a rate (Hz; 0 = off) so that 1000 robots cost nothing measurable per step
(bench/markers.py). Colours are altmarl_ros.swarmview's, the video's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from altmarl_ros.errors import InputError
from altmarl_ros.swarmview import zone_colours
from altmarl_ros.zones import Zones

TOPIC = "/swarm/markers"
DISC_HEIGHT = 0.02  # m
POINT_SIZE = 0.12  # m
TEXT_HEIGHT = 0.35  # m


class MarkerThrottle:
    """`due(now_s)`: True at most `rate_hz` times per second (of the clock passed in); rate 0 = never."""

    def __init__(self, rate_hz: float) -> None:
        if rate_hz < 0 or not math.isfinite(rate_hz):
            raise InputError(f"marker rate must be >= 0 Hz, got {rate_hz}")
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


def _marker(ns: str, mid: int, kind: int, frame_id: str) -> Marker:
    m = Marker(ns=ns, id=mid, type=kind, action=Marker.ADD, frame_locked=False)
    m.header.frame_id = frame_id
    m.pose.orientation.w = 1.0
    return m


def _ring_points(centre, radius: float) -> list[Point]:
    angle = np.linspace(0, 2 * np.pi, 41)
    return [Point(x=float(centre[0] + radius * c), y=float(centre[1] + radius * s), z=DISC_HEIGHT)
            for c, s in zip(np.cos(angle), np.sin(angle), strict=True)]


class SwarmMarkers:
    """The markers of one zone layout, built once and updated in place (constructing a `Marker` costs about
    1 ms in rclpy's Python messages: per update only points, colours, texts and stamps change).
    `update(...)` -> the MarkerArray of that moment (its markers are reused by the next update)."""

    def __init__(self, zones: Zones) -> None:
        Z, frame = zones.n_zones, zones.frame_id
        self.zones, self.colours = zones, zone_colours(np.arange(Z))
        self.discs, self.names, self.robots = [], [], []
        for z, (x, y) in enumerate(zones.centres.tolist()):
            disc = _marker("zones", z, Marker.CYLINDER, frame)
            disc.pose.position.x, disc.pose.position.y = x, y
            disc.scale.x = disc.scale.y = 2 * zones.zone_radius
            disc.scale.z = DISC_HEIGHT
            name = _marker("zone_names", z, Marker.TEXT_VIEW_FACING, frame)
            name.pose.position.x, name.pose.position.y, name.pose.position.z = x, y + 1.3 * zones.zone_radius, 0.3
            name.scale.z = TEXT_HEIGHT
            name.color = _colour((0.1, 0.1, 0.1), 1.0)
            dots = _marker("robots", z, Marker.POINTS, frame)
            dots.scale.x = dots.scale.y = POINT_SIZE
            dots.color = _colour(self.colours[z], 1.0)
            self.discs.append(disc)
            self.names.append(name)
            self.robots.append(dots)
        self.active = _marker("active", 0, Marker.LINE_STRIP, frame)
        self.active.scale.x, self.active.color = 0.12, _colour((1.0, 0.84, 0.0), 1.0)
        self.command = _marker("command", 0, Marker.LINE_STRIP, frame)
        self.command.scale.x, self.command.color = 0.05, _colour((0.0, 0.0, 0.0), 1.0)
        self.rings = {(kind, z): _ring_points(c, zones.zone_radius * (1.08 if kind == "active" else 1.22))
                      for kind in ("active", "command") for z, c in enumerate(zones.centres)}
        # Goal flows z -> g (g != z): an ADD arrow while robots are sent along it, else a DELETE.
        self.arrows: dict[int, Marker] = {}
        self.deletes: dict[int, Marker] = {}
        for pair in range(Z * Z):
            if pair // Z == pair % Z:
                continue
            start, end = zones.centres[pair // Z], zones.centres[pair % Z]
            tail, head = start + 0.3 * (end - start), start + 0.7 * (end - start)
            arrow = _marker("goals", pair, Marker.ARROW, frame)
            arrow.points = [Point(x=float(tail[0]), y=float(tail[1]), z=2 * DISC_HEIGHT),
                            Point(x=float(head[0]), y=float(head[1]), z=2 * DISC_HEIGHT)]
            arrow.color = _colour((0.2, 0.2, 0.2), 0.8)
            arrow.scale.z = 0.3  # head length
            self.arrows[pair] = arrow
            self.deletes[pair] = Marker(ns="goals", id=pair, action=Marker.DELETE)
            self.deletes[pair].header.frame_id = frame
        self.no_command = Marker(ns="command", id=0, action=Marker.DELETE)
        self.no_command.header.frame_id = frame
        self.pool: list[Point] = []  # robot i's Point, reused: setting x, y costs a fraction of a new Point

    def update(self, *, s_g: int, a_g: int, xy: np.ndarray, zone: np.ndarray, goal: np.ndarray,
               stamp: Time) -> MarkerArray:
        """xy (n, 2) robot positions, zone (n,) and goal (n,) zone ids (-1 unknown); a_g = -1 when no command
        is known. O(n) numpy plus one Point object per robot (bench/README.md: the cost at n = 1000)."""
        Z = self.zones.n_zones
        xy, zone, goal = np.asarray(xy, dtype=np.float64), np.asarray(zone), np.asarray(goal)
        counts = np.bincount(zone[zone >= 0], minlength=Z)
        order = np.argsort(zone, kind="stable")
        bounds = np.searchsorted(zone[order], np.arange(Z + 1), side="left")
        self.pool += [Point(z=2 * DISC_HEIGHT) for _ in range(len(self.pool), zone.size)]
        for point, (x, y) in zip(self.pool, xy.tolist(), strict=False):
            point.x, point.y = x, y
        ranked = [self.pool[i] for i in order.tolist()]
        out: list[Marker] = []
        for z in range(Z):
            self.discs[z].color = _colour(self.colours[z], 0.6 if z == s_g else 0.2)
            self.names[z].text = f"zone {z}: {int(counts[z])}"
            self.robots[z].points = ranked[bounds[z]:bounds[z + 1]]
            out += [self.discs[z], self.names[z], self.robots[z]]
        self.active.points = self.rings["active", s_g]
        out.append(self.active)
        if 0 <= a_g < Z:
            self.command.points = self.rings["command", a_g]
            out.append(self.command)
        else:
            out.append(self.no_command)
        sent = (goal >= 0) & (goal < Z) & (zone >= 0) & (goal != zone)
        flows = np.bincount(zone[sent] * Z + goal[sent], minlength=Z * Z)
        for pair, arrow in self.arrows.items():
            if flows[pair] == 0:
                out.append(self.deletes[pair])
                continue
            arrow.scale.x = 0.04 + 0.4 * flows[pair] / max(zone.size, 1)  # shaft diameter: the share sent
            arrow.scale.y = 2.5 * arrow.scale.x  # head diameter
            out.append(arrow)
        for m in out:
            m.header.stamp = stamp
        return MarkerArray(markers=out)


def swarm_markers(zones: Zones, *, s_g: int, a_g: int, xy: np.ndarray, zone: np.ndarray, goal: np.ndarray,
                  stamp: Time) -> MarkerArray:
    """One-off `SwarmMarkers(zones).update(...)` (see the module docstring)."""
    return SwarmMarkers(zones).update(s_g=s_g, a_g=a_g, xy=xy, zone=zone, goal=goal, stamp=stamp)


class MarkerPublisher:
    """The simulator's /swarm/markers. `stage(...)` once per decision step keeps the step's view when the throttle
    allows and someone listens (a subscriber, or the bag): unwatched, it costs one check; `flush()` builds and
    publishes what is staged. In lockstep the simulator stages at the end of a step and flushes after the next
    tick, while the robots and the controller compute their answers: off the step's critical path."""

    def __init__(self, node, zones: Zones, rate_hz: float) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        self.view, self.throttle = SwarmMarkers(zones), MarkerThrottle(rate_hz)
        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)  # best-effort viewers match it too
        self.pub = node.create_publisher(MarkerArray, TOPIC, qos) if rate_hz > 0 else None
        self.published = 0
        self.staged: tuple[dict, Any] | None = None  # (the view, the bag recorder or None)

    def stage(self, now_s: float, *, s_g: int, a_g: int, xy: np.ndarray, zone: np.ndarray, goal: np.ndarray,
              stamp: Time, bag=None) -> bool:
        if self.pub is None or (bag is None and self.pub.get_subscription_count() == 0) or not self.throttle.due(now_s):
            return False
        self.staged = (dict(s_g=s_g, a_g=a_g, xy=np.array(xy, dtype=np.float64), zone=np.array(zone),
                            goal=np.array(goal), stamp=stamp), bag)
        return True

    def flush(self) -> bool:
        if self.staged is None or self.pub is None:
            return False
        view, bag = self.staged
        self.staged = None
        msg = self.view.update(**view)
        self.pub.publish(msg)
        if bag is not None:
            bag.write(TOPIC, msg)
        self.published += 1
        return True

    def maybe_publish(self, now_s: float, **view) -> bool:
        """`stage` then `flush` at once."""
        return self.stage(now_s, **view) and self.flush()
