"""Shared pytest set-up: ROS isolation helpers (long experiments live in bench/, not in tests).

ROS integration tests use real rclpy over Fast DDS on localhost. Each test module gets a private
ROS_DOMAIN_ID (`ros_domain` fixture) so that modules never see each other's nodes.
"""

from __future__ import annotations

import os
import zlib

import pytest


def domain_for(module_name: str) -> int:
    """A ROS_DOMAIN_ID in [110, 200) derived from the module name and the pid (0-101 are common defaults)."""
    return 110 + (zlib.crc32(module_name.encode()) + os.getpid()) % 90


@pytest.fixture(scope="module")
def ros_domain(request, tmp_path_factory):
    """Private ROS_DOMAIN_ID + Fast DDS swarm profile for this module (and its child processes)."""
    pytest.importorskip("rclpy")
    from altmarl_ros.ros.dds import write_profile

    saved = {key: os.environ.get(key) for key in ("ROS_DOMAIN_ID", "RMW_IMPLEMENTATION",
                                                  "FASTDDS_DEFAULT_PROFILES_FILE")}
    domain = domain_for(request.module.__name__)
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    os.environ["RMW_IMPLEMENTATION"] = "rmw_fastrtps_cpp"
    os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(write_profile(tmp_path_factory.mktemp("dds")))
    yield domain
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
