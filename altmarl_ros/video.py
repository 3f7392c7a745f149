"""Top-down video of a swarm run (ROS-free): matplotlib draws each decision step, the ffmpeg of the
`imageio-ffmpeg` wheel encodes H.264 (yuv420p, plays everywhere).

Two views. `positions` (kinematic and physics runs): every robot where its pose says, coloured by its zone,
with a short line towards its goal zone when it was sent elsewhere. `occupancy` (model runs, whose robots are
placed in their zones, not driven): each zone's robots as dots packed around its centre and its count. Both
outline the active zone s_g (gold) and the controller's commanded zone a_g (dashed).

    altmarl replay BAG --video OUT.mp4 [--fps 10] [--size 640] [--view auto|positions|occupancy]
    altmarl swarm ... --video OUT.mp4          (records the bag and renders it after the run)
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from altmarl_ros.errors import InputError
from altmarl_ros.progress import Progress
from altmarl_ros.swarmview import SwarmFrames, ViewError, read_frames, zone_colours
from altmarl_ros.zones import Zones

VIEWS = ("auto", "positions", "occupancy")
DPI = 100
OCCUPANCY_SPACING = 0.22  # m between the dots of the occupancy view


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    frames: int
    width: int
    height: int
    fps: float
    view: str


class _Scene:
    """The matplotlib figure, its artists updated frame by frame (drawing from scratch is ~5x slower)."""

    def __init__(self, frames: SwarmFrames, size: int, view: str) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.collections import LineCollection
        from matplotlib.patches import Circle

        self.f, self.view, self.plt = frames, view, plt
        zones = frames.zones
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        self.fig = plt.figure(figsize=(size / DPI, size / DPI), dpi=DPI)
        self.canvas = FigureCanvasAgg(self.fig)
        ax = self.fig.add_axes((0.02, 0.02, 0.96, 0.9))
        h = zones.arena_half_size
        ax.set(xlim=(-h, h), ylim=(-h, h), aspect="equal", xticks=[], yticks=[])
        colours = zone_colours(np.arange(zones.n_zones))
        self.discs = [ax.add_patch(Circle(tuple(c), zones.zone_radius, facecolor=(*colours[z], 0.15),
                                          edgecolor=colours[z], lw=1)) for z, c in enumerate(zones.centres)]
        self.active = Circle((0, 0), zones.zone_radius * 1.08, fill=False, edgecolor="gold", lw=4)
        self.command = Circle((0, 0), zones.zone_radius * 1.22, fill=False, edgecolor="k", lw=1.5, ls="--")
        ax.add_patch(self.active)
        ax.add_patch(self.command)
        self.labels = [ax.text(c[0], c[1] + zones.zone_radius * 1.35, "", ha="center", va="bottom", fontsize=8)
                       for c in zones.centres]
        self.goals = LineCollection([], colors="0.4", linewidths=0.6)
        ax.add_collection(self.goals)
        self.dots = ax.scatter(np.zeros(frames.n_robots), np.zeros(frames.n_robots), s=max(2.0, 40 / np.sqrt(
            max(frames.n_robots, 1))), edgecolors="none")
        self.title = self.fig.suptitle("", fontsize=10)
        self.rank = np.zeros(frames.n_robots, dtype=np.int64)

    def _occupancy_xy(self, zone: np.ndarray) -> np.ndarray:
        """Robot i's dot: the next free slot of its zone (sunflower packing around the centre)."""
        order = np.argsort(zone, kind="stable")
        sorted_zone = zone[order]
        first = np.searchsorted(sorted_zone, sorted_zone, side="left")
        self.rank[order] = np.arange(zone.size) - first
        return self.f.zones.goal_points(np.maximum(zone, 0), self.rank, OCCUPANCY_SPACING)

    def draw(self, t: int) -> np.ndarray:
        """Frame t as an (height, width, 3) uint8 image."""
        f, zones = self.f, self.f.zones
        zone, s_g, a_g = f.zone[t], int(f.s_g[t]), int(f.a_g[t])
        counts = np.bincount(zone[zone >= 0], minlength=zones.n_zones)
        if self.view == "occupancy":
            xy = self._occupancy_xy(zone)
            segments: list = []
        else:
            xy = np.where(np.isfinite(f.xy[t]), f.xy[t], np.nan)
            away = (f.goal[t] >= 0) & (f.goal[t] != zone) & np.isfinite(xy).all(-1)
            target = zones.centres[np.maximum(f.goal[t], 0)]
            ends = xy + 0.35 * (target - xy) / np.maximum(np.linalg.norm(target - xy, axis=-1, keepdims=True), 1e-9)
            segments = list(np.stack([xy[away], ends[away]], 1))
        self.dots.set_offsets(xy)
        self.dots.set_facecolor(zone_colours(zone).tolist())
        self.goals.set_segments(segments)
        self.active.center = tuple(zones.centres[s_g])
        self.command.set_visible(0 <= a_g < zones.n_zones)
        if 0 <= a_g < zones.n_zones:
            self.command.center = tuple(zones.centres[a_g])
        for z, label in enumerate(self.labels):
            label.set_text(f"zone {z}: {counts[z]}")
        reward = "" if not np.isfinite(f.reward[t]) else f"  reward {f.reward[t]:.2f}"
        command = f"  a_g {a_g}" if a_g >= 0 else ""
        self.title.set_text(f"step {int(f.steps[t])}  s_g {s_g}{command}{reward}  ({self.view}, n={f.n_robots})")
        self.canvas.draw()
        return np.asarray(self.canvas.buffer_rgba())[..., :3].copy()

    def close(self) -> None:
        self.plt.close(self.fig)


def render_video(frames: SwarmFrames, path: str | Path, *, view: str = "auto", fps: float = 10.0, size: int = 640,
                 progress: bool = True) -> VideoInfo:
    """Write one video frame per decision step of `frames` to `path` (.mp4, written to a temporary file and
    renamed). size: width = height in pixels, a multiple of 16. view: see the module docstring; auto =
    occupancy when the robots were placed (`SwarmFrames.placed`), else positions."""
    import imageio_ffmpeg

    if view not in VIEWS:
        raise InputError(f"view must be one of {VIEWS}, got {view!r}")
    if size < 64 or size % 16:
        raise InputError(f"video size must be a multiple of 16 and >= 64 pixels, got {size}")
    if not fps > 0:
        raise InputError(f"fps must be > 0, got {fps}")
    path = Path(path)
    if view == "auto":
        view = "occupancy" if frames.placed() else "positions"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix or '.mp4'}")
    scene = _Scene(frames, size, view)
    writer = imageio_ffmpeg.write_frames(str(tmp), (size, size), fps=fps, codec="libx264", pix_fmt_in="rgb24",
                                         pix_fmt_out="yuv420p", macro_block_size=16, ffmpeg_log_level="error")
    try:
        writer.send(None)
        with Progress(frames.steps.size, "frames", enabled=progress) as bar:
            for t in range(frames.steps.size):
                writer.send(scene.draw(t))
                bar.update(t + 1)
        writer.close()
        os.replace(tmp, path)
    finally:
        scene.close()
        writer.close()
        tmp.unlink(missing_ok=True)
    return VideoInfo(path, int(frames.steps.size), size, size, float(fps), view)


def video_from_bag(bag: str | Path, out: str | Path, zones: Zones, **kwargs) -> VideoInfo:
    """`read_frames` then `render_video` (keyword arguments as render_video's)."""
    return render_video(read_frames(bag, zones), out, **kwargs)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `altmarl replay` (also `python -m altmarl_ros.video`)."""
    parser.add_argument("bag", help="rosbag2 directory of a swarm run (altmarl swarm --bag, bag_path:=)")
    parser.add_argument("--video", required=True, help="output .mp4")
    parser.add_argument("--zones", default="", help="zones YAML (default: the package's config/zones.yaml)")
    parser.add_argument("--view", default="auto", choices=VIEWS, help="auto: occupancy for model runs")
    parser.add_argument("--fps", type=float, default=10.0, help="frames (decision steps) per second")
    parser.add_argument("--size", type=int, default=640, help="width = height in pixels, a multiple of 16")


def run(args: argparse.Namespace) -> int:
    """Entry point of `altmarl replay`; returns the exit status (2: bad bag or option, one line)."""
    from altmarl_ros.paths import share_path
    from altmarl_ros.zones import load_zones

    try:
        zones = load_zones(args.zones or share_path("config/zones.yaml"))
        info = video_from_bag(args.bag, args.video, zones, view=args.view, fps=args.fps, size=args.size)
    except (ViewError, ValueError, OSError) as exc:
        print(f"altmarl replay: {exc}", file=sys.stderr)
        return 2
    print(f"altmarl replay: {info.frames} frames ({info.view}, {info.width}x{info.height}, {info.fps:g} fps) "
          f"-> {info.path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="altmarl replay", description="Render a swarm bag as a top-down video.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
