"""A passive observer node: collects /swarm/metrics and the controller's /diagnostics for a run's summary."""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray

from altmarl_ros import contract
from altmarl_ros.ros import topics


class MonitorNode(Node):
    def __init__(self, node_name: str = contract.MONITOR_NODE, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.metrics: list[dict[str, float]] = []
        self.controller: list[dict[str, str]] = []
        self.create_subscription(Float64MultiArray, topics.METRICS, self._on_metrics, topics.METRICS_QOS)
        self.create_subscription(DiagnosticArray, topics.DIAGNOSTICS, self._on_diag, topics.DIAGNOSTICS_QOS)

    def _on_metrics(self, msg: Float64MultiArray) -> None:
        try:
            self.metrics.append(topics.parse_metrics(msg))
        except ValueError as exc:
            self.get_logger().warning(str(exc))

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == contract.CONTROLLER_NODE:
                self.controller.append({kv.key: kv.value for kv in status.values})

    @property
    def steps(self) -> int:
        return len(self.metrics)
