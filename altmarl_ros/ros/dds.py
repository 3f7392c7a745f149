"""A Fast DDS XML profile for swarm-sized bursts on one host (written per run, selected by env var).

Measured here (bench/README.md, section 4): each step the simulator publishes n poses and receives n zone
goals at once. With Fast DDS defaults, a 1000-message burst overflows the shared-memory port queue
(512 descriptors); the lost samples are only repaired at the next writer heartbeat (3 s), so lockstep
steps time out (n=1000: 1 step/s, 25 % answers dropped). A deeper queue (8192) fixes it (7-8 steps/s,
0 dropped); a 50 ms heartbeat shortens any remaining repair.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "FASTDDS_DEFAULT_PROFILES_FILE"

PROFILE = """<?xml version="1.0" encoding="UTF-8" ?>
<dds xmlns="http://www.eprosima.com">
  <profiles>
    <transport_descriptors>
      <transport_descriptor>
        <transport_id>altmarl_shm</transport_id>
        <type>SHM</type>
        <segment_size>33554432</segment_size>
        <port_queue_capacity>8192</port_queue_capacity>
      </transport_descriptor>
      <transport_descriptor>
        <transport_id>altmarl_udp</transport_id>
        <type>UDPv4</type>
        <sendBufferSize>8388608</sendBufferSize>
        <receiveBufferSize>8388608</receiveBufferSize>
      </transport_descriptor>
    </transport_descriptors>
    <participant profile_name="altmarl_participant" is_default_profile="true">
      <rtps>
        <userTransports>
          <transport_id>altmarl_shm</transport_id>
          <transport_id>altmarl_udp</transport_id>
        </userTransports>
        <useBuiltinTransports>false</useBuiltinTransports>
      </rtps>
    </participant>
    <data_writer profile_name="altmarl_writer" is_default_profile="true">
      <times>
        <heartbeat_period><sec>0</sec><nanosec>50000000</nanosec></heartbeat_period>
      </times>
    </data_writer>
  </profiles>
</dds>
"""


def write_profile(directory: str | Path) -> Path:
    path = Path(directory) / "fastdds_swarm.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PROFILE)
    return path


def use_profile(directory: str | Path) -> str:
    """Select the swarm profile for this process and its children, unless the user chose one already."""
    if not os.environ.get(ENV_VAR):
        os.environ[ENV_VAR] = str(write_profile(directory))
    return os.environ[ENV_VAR]
