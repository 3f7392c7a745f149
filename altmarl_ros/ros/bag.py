"""Record a rosbag2 (mcap) of the messages a node publishes and receives, with `rosbags` (no ros2 bag needed).

The bag is a standard rosbag2 directory (metadata.yaml + .mcap) that `ros2 bag play` and
`rosbags.highlevel.AnyReader` read.
"""

from __future__ import annotations

import time
from pathlib import Path

from rclpy.serialization import serialize_message
from rosbags.interfaces import Connection
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from altmarl_ros.errors import InputError


def _msgtype(msg_class) -> str:
    module = msg_class.__module__.split(".")[0]  # e.g. geometry_msgs
    return f"{module}/msg/{msg_class.__name__}"


class BagRecorder:
    """Append-only recorder; `write(topic, msg)` registers the topic's type on first use."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if path.exists():
            raise InputError(f"bag_path {path} already exists; rosbag2 writes a new directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.typestore = get_typestore(Stores.ROS2_KILTED)
        self.writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self.connections: dict[str, Connection] = {}
        self.count = 0

    def write(self, topic: str, msg, t_ns: int | None = None) -> None:
        conn = self.connections.get(topic)
        if conn is None:
            conn = self.writer.add_connection(topic, _msgtype(type(msg)), typestore=self.typestore)
            self.connections[topic] = conn
        self.writer.write(conn, t_ns if t_ns is not None else time.time_ns(), serialize_message(msg))
        self.count += 1

    def close(self) -> None:
        self.writer.close()
