"""The swarm's Fast DDS profiles: well-formed XML, the transports they name, and a clear error for a bad name."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from altmarl_ros.ros.dds import ENV_VAR, profile, use_profile, write_profile

NS = {"dds": "http://www.eprosima.com"}


def _transports(xml: str) -> tuple[list[str], list[str]]:
    """(types of the declared transport descriptors, transport ids the default participant uses)."""
    root = ET.fromstring(xml)
    types = [t.text for t in root.findall(".//dds:transport_descriptor/dds:type", NS)]
    used = [t.text for t in root.findall(".//dds:participant/dds:rtps/dds:userTransports/dds:transport_id", NS)]
    return types, used


def test_udp_profile_has_no_shared_memory():
    types, used = _transports(profile("udp"))
    assert types == ["UDPv4"] and used == ["altmarl_udp"]
    root = ET.fromstring(profile("udp"))
    assert root.find(".//dds:useBuiltinTransports", NS).text == "false"  # else Fast DDS adds SHM back
    assert root.find(".//dds:participant", NS).get("is_default_profile") == "true"


def test_shm_profile_puts_shared_memory_first_with_a_deep_queue():
    types, used = _transports(profile("shm"))
    assert types == ["SHM", "UDPv4"] and used == ["altmarl_shm", "altmarl_udp"]
    assert ET.fromstring(profile("shm")).find(".//dds:port_queue_capacity", NS).text == "8192"


def test_bad_transport_is_named():
    with pytest.raises(ValueError, match="'tcp'"):
        profile("tcp")


def test_use_profile_keeps_a_profile_the_user_chose(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, "/etc/my_profile.xml")
    assert use_profile(tmp_path, "shm") == "/etc/my_profile.xml"
    monkeypatch.delenv(ENV_VAR)
    chosen = use_profile(tmp_path, "shm")
    assert chosen == str(write_profile(tmp_path, "shm")) and "SHM" in Path(chosen).read_text()


@pytest.mark.parametrize("transport", ["udp", "shm"])
def test_fast_dds_accepts_the_profile(ros_domain, tmp_path, transport):
    """Fast DDS itself parses the profile: a node starts with it and nothing is reported by its XML parser
    (which prints `[XMLPARSER Error]` and falls back to defaults on a profile it rejects)."""
    import os
    import subprocess
    import sys

    pytest.importorskip("rclpy")
    env = {**os.environ, ENV_VAR: str(write_profile(tmp_path, transport)), "ROS_DOMAIN_ID": str(ros_domain),
           "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"}
    code = "import rclpy; rclpy.init(); rclpy.create_node('altmarl_profile_check').destroy_node(); print('started')"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "started" in result.stdout, result.stdout + result.stderr
    assert "XMLPARSER" not in result.stdout + result.stderr, result.stdout + result.stderr


def test_profile_for_launch(monkeypatch):
    """swarm.launch.py's dds_transport: a fresh profile file, none for 'none' or a variable the user set."""
    from altmarl_ros.ros.dds import profile_for_launch

    monkeypatch.delenv(ENV_VAR, raising=False)
    path = profile_for_launch("udp")
    assert path is not None and Path(path).read_text() == profile("udp")
    assert profile_for_launch("none") is None
    monkeypatch.setenv(ENV_VAR, "/etc/my_profile.xml")
    assert profile_for_launch("shm") is None
    with pytest.raises(ValueError, match="dds_transport"):
        profile_for_launch("UDP")
