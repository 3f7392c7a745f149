"""A Fast DDS XML profile for swarm-sized bursts on one host (written per run, selected by env var).

Measured here (bench/README.md, sections 4 and 8): each step the simulator publishes n poses and receives
n zone goals at once. With Fast DDS defaults, a 1000-message burst overflows the shared-memory port queue
(512 descriptors); the lost samples are only repaired at the next writer heartbeat (3 s), so lockstep
steps time out (n=1000: 1 step/s, 25 % answers dropped). Two profiles avoid that:

- `udp` (the default): UDPv4 only, on every network interface (no interface whitelist, so nodes on other
  hosts of the network in the same ROS_DOMAIN_ID can take part), with 8 MB socket buffers (the kernel caps
  them at `net.core.rmem_max`) and a 50 ms heartbeat. UDP keeps no state shared between processes, so a node that is
  SIGKILLed or crashes cannot leave anything behind that blocks the others.
- `shm`: shared memory first (port queue 8192 descriptors, 32 MB segment), UDPv4 beside it. With Fast
  DDS 3.2.3 a SIGKILLed peer can leave a port locked: the simulator then blocks in `publish()` for good
  and later swarms on the machine cannot start until `/dev/shm/fastdds_*` is removed (bench/README.md
  4.1: in the 4th of 11 runs, then in all 7 after it; in none of 11 on UDP; eProsima/Fast-DDS#5469).
  Throughput at n = 1000 is the same on both (bench/README.md 4.1).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from altmarl_ros.contract import DdsTransport, values
from altmarl_ros.errors import InputError

ENV_VAR = "FASTDDS_DEFAULT_PROFILES_FILE"
TRANSPORTS = values(DdsTransport)
LAUNCH_CHOICES = (*TRANSPORTS, "none")  # `ros2 launch ... dds_transport:=`; none = leave Fast DDS as it is

_SHM = """      <transport_descriptor>
        <transport_id>altmarl_shm</transport_id>
        <type>SHM</type>
        <segment_size>33554432</segment_size>
        <port_queue_capacity>8192</port_queue_capacity>
      </transport_descriptor>
"""

PROFILE = """<?xml version="1.0" encoding="UTF-8" ?>
<dds xmlns="http://www.eprosima.com">
  <profiles>
    <transport_descriptors>
{shm_descriptor}      <transport_descriptor>
        <transport_id>altmarl_udp</transport_id>
        <type>UDPv4</type>
        <sendBufferSize>8388608</sendBufferSize>
        <receiveBufferSize>8388608</receiveBufferSize>
      </transport_descriptor>
    </transport_descriptors>
    <participant profile_name="altmarl_participant" is_default_profile="true">
      <rtps>
        <userTransports>
{shm_id}          <transport_id>altmarl_udp</transport_id>
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


def profile(transport: str = "udp") -> str:
    """The profile's XML text for `transport` ('udp' or 'shm')."""
    if transport not in TRANSPORTS:
        raise InputError(f"DDS transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}")
    shm = transport == "shm"
    return PROFILE.format(shm_descriptor=_SHM if shm else "",
                          shm_id="          <transport_id>altmarl_shm</transport_id>\n" if shm else "")


def write_profile(directory: str | Path, transport: str = "udp") -> Path:
    path = Path(directory) / f"fastdds_swarm_{transport}.xml"
    text = profile(transport)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def use_profile(directory: str | Path, transport: str = "udp") -> str:
    """Select the swarm profile for this process and its children, unless the user chose one already."""
    if not os.environ.get(ENV_VAR):
        os.environ[ENV_VAR] = str(write_profile(directory, transport))
    return os.environ[ENV_VAR]


def profile_for_launch(transport: str) -> str | None:
    """The file `swarm.launch.py` sets FASTDDS_DEFAULT_PROFILES_FILE to for `dds_transport:=transport`: a new
    profile in a temporary directory, or None for 'none' or when the user has set the variable already."""
    if transport not in LAUNCH_CHOICES:
        raise InputError(f"dds_transport must be one of {', '.join(LAUNCH_CHOICES)}, got {transport!r}")
    if transport == "none" or os.environ.get(ENV_VAR):
        return None
    return str(write_profile(tempfile.mkdtemp(prefix="altmarl_dds_"), transport))
