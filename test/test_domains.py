"""`altmarl swarm`'s own ROS domain: a claim excludes other processes until its holder exits (even by SIGKILL)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from altmarl_ros.domains import DomainError, claim_domain

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from altmarl_ros.domains import claim_domain
    claim = claim_domain({}, lock_dir=Path(sys.argv[1]))
    print(claim.domain_id, flush=True)
    time.sleep(60)
""")


def test_environment_domain_is_kept(tmp_path):
    env = {"ROS_DOMAIN_ID": "42"}
    claim = claim_domain(env, lock_dir=tmp_path)
    assert (claim.domain_id, claim.source, env["ROS_AUTOMATIC_DISCOVERY_RANGE"]) == (42, "environment", "LOCALHOST")
    with pytest.raises(DomainError, match="not a ROS domain ID"):
        claim_domain({"ROS_DOMAIN_ID": "300"}, lock_dir=tmp_path)


def test_claims_exclude_each_other_until_the_holder_dies(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        held = int(holder.stdout.readline())
        claims = []
        for _ in range(3):  # this process: each claim is a different domain, none the holder's
            env: dict[str, str] = {}
            claims.append(claim_domain(env, lock_dir=tmp_path))
            assert env["ROS_DOMAIN_ID"] == str(claims[-1].domain_id)
        ids = [c.domain_id for c in claims]
        assert held not in ids and len(set(ids)) == 3 and all(c.source == "claimed" for c in claims)
        for c in claims:
            c.release()
        holder.kill()
        holder.wait(10)
        # the dead holder's domain is free again: all 101 can be claimed at once (the claims are kept alive)
        every = [claim_domain({}, lock_dir=tmp_path) for _ in range(101)]
        assert held in {c.domain_id for c in every} and len({c.domain_id for c in every}) == 101
        with pytest.raises(DomainError, match="every ROS domain"):
            claim_domain({}, lock_dir=tmp_path)
    finally:
        holder.kill()
        holder.wait(10)


def test_a_preferred_domain_is_tried_first_then_the_next_free_one(tmp_path):
    """`first`: the test modules' domains (conftest) take the same locks as `altmarl swarm`, starting at their own."""
    a = claim_domain({}, lock_dir=tmp_path, first=60)
    b = claim_domain({}, lock_dir=tmp_path, first=60)
    last = claim_domain({}, lock_dir=tmp_path, first=101)
    wrapped = claim_domain({}, lock_dir=tmp_path, first=101)
    assert (a.domain_id, b.domain_id, last.domain_id, wrapped.domain_id) == (60, 61, 101, 1)
    for claim in (a, b, last, wrapped):
        claim.release()
