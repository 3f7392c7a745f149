"""A ROS domain of its own for each `altmarl swarm` run on a machine (ROS-free).

Two swarms in one ROS domain hear each other (each simulator takes the other's answers). Unless the user set
ROS_DOMAIN_ID, `claim_domain` picks a domain no other run on this machine holds: it takes an exclusive
`flock` on `<lock_dir>/<id>.lock`, which the kernel releases when the process ends (also on SIGKILL), so a
crashed run never leaks its claim. ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST keeps the run off other machines.
Domains 1..101 keep Fast DDS's ports below Linux's ephemeral range (ROS 2's domain ID docs).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

DOMAIN_ENV = "ROS_DOMAIN_ID"
RANGE_ENV = "ROS_AUTOMATIC_DISCOVERY_RANGE"
CANDIDATES = range(1, 102)
LOCK_DIR = Path(tempfile.gettempdir()) / "altmarl_ros_domains"


class DomainError(RuntimeError):
    """No free domain, or a bad ROS_DOMAIN_ID in the environment."""


@dataclass
class DomainClaim:
    """The run's domain: `source` is 'environment' (ROS_DOMAIN_ID was set: kept) or 'claimed' (held by `lock`)."""

    domain_id: int
    source: str
    discovery_range: str
    lock: IO[str] | None = field(default=None, repr=False)

    def release(self) -> None:
        if self.lock is not None:
            self.lock.close()  # closing the descriptor drops the flock
            self.lock = None


def _try_lock(path: Path) -> IO[str] | None:
    handle = open(path, "a+")  # noqa: SIM115 - held open for the run: the open descriptor is the claim
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def claim_domain(environ: dict[str, str] | None = None, *, lock_dir: Path = LOCK_DIR,
                 first: int | None = None) -> DomainClaim:
    """Keep the environment's ROS_DOMAIN_ID if set, else claim a free one of CANDIDATES, trying `first` first
    (default: an offset from the pid, so that runs started together do not all try domain 1 first). Sets
    ROS_DOMAIN_ID and, when unset, ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST in `environ` (default: os.environ)."""
    env = os.environ if environ is None else environ
    env.setdefault(RANGE_ENV, "LOCALHOST")
    given = env.get(DOMAIN_ENV, "").strip()
    if given:
        if not given.isdigit() or not 0 <= int(given) <= 232:
            raise DomainError(f"{DOMAIN_ENV}={given!r} is not a ROS domain ID (an integer in 0..232)")
        return DomainClaim(int(given), "environment", env[RANGE_ENV])
    lock_dir.mkdir(parents=True, exist_ok=True)
    start = (os.getpid() if first is None else first - CANDIDATES.start) % len(CANDIDATES)
    for i in range(len(CANDIDATES)):
        domain = CANDIDATES[(start + i) % len(CANDIDATES)]
        lock = _try_lock(lock_dir / f"{domain}.lock")
        if lock is not None:
            env[DOMAIN_ENV] = str(domain)
            return DomainClaim(domain, "claimed", env[RANGE_ENV], lock)
    raise DomainError(f"every ROS domain {CANDIDATES.start}..{CANDIDATES.stop - 1} is held by another run on this "
                      f"machine (locks in {lock_dir}); set {DOMAIN_ENV} to share one knowingly")
