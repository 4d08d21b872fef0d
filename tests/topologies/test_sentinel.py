"""Sentinel: one primary, one replica, three sentinels. The client follows a
SIGKILLed primary without a restart; what a failover costs and loses."""

from __future__ import annotations

import time

import redis
from redis.sentinel import MasterNotFoundError

from dev.topologies import Probe, SentinelTopology
from dev.waiting import wait_until
from infra.redis import Timeouts, call_bound, connect, limits_storage
from support.redis_checks import (
    FAST,
    blocked,
    exercise,
    limits_hit,
    service_limit_counts,
    tagged,
)

SLACK = 0.5


def sentinel_url(topology: SentinelTopology, db: int = 0) -> str:
    """The module's topology has a password on the data nodes and another on the
    sentinels: the URL carries the first, sentinel_password= the second."""
    return topology.url(db, query=f"sentinel_password={topology.sentinel_password}")


def test_reads_writes_pipelines_and_scripts(sentinel: SentinelTopology) -> None:
    client = connect(sentinel_url(sentinel, db=3), timeouts=FAST)
    prefix = tagged("sentinel")
    exercise(client, prefix)
    with sentinel.primary().client() as direct:
        direct.select(3)
        assert direct.keys(f"{prefix}*")


def test_limits_storage(sentinel: SentinelTopology) -> None:
    storage = limits_storage(sentinel_url(sentinel, db=2), key_prefix="limits", timeouts=FAST)
    limits_hit(storage.create())
    service_limit_counts(storage)
    # It counted in database 2 of the primary, not in a service named "mymaster2".
    with sentinel.primary().client() as direct:
        direct.select(2)
        assert direct.keys("limits:*")


def test_sentinels_without_a_password(fresh_sentinel: SentinelTopology) -> None:
    """The URL's password would be sent to the sentinels too; a sentinel without
    requirepass refuses AUTH. Here nothing has a password: check that an
    empty sentinel_password= reaches them without AUTH."""
    url = fresh_sentinel.url(query="sentinel_password=")
    exercise(connect(url, timeouts=FAST), tagged("nopw"))
    limits_hit(limits_storage(url, key_prefix="limits").create())


def test_the_client_follows_a_sigkilled_primary(sentinel: SentinelTopology, record) -> None:
    client = connect(sentinel_url(sentinel), timeouts=FAST)
    prefix = tagged("probe")

    def write(i: int) -> tuple[str, str]:
        key = f"{prefix}:{i}"
        client.set(key, str(i))
        return key, str(i)

    with Probe(write) as probe:
        killed_at = time.monotonic()
        old = sentinel.kill_primary()
        new = sentinel.wait_for_new_primary(old)
        promoted_at = time.monotonic()
        wait_until(lambda: probe.successes_since(promoted_at) >= 20, what="writes to resume")
    report = probe.report(client.get)

    assert new is not old
    assert report.errors, "writes cannot succeed while no primary exists"
    assert set(report.error_kinds) <= {"ConnectionError", "MasterNotFoundError", "TimeoutError"}
    # Only writes acknowledged before the kill may be lost (asynchronous replication).
    assert all(at < killed_at for at in report.lost.values())
    exercise(client, tagged("after"))  # scripts are loaded again on the new primary
    record(
        f"Sentinel SIGKILL primary: sentinels switched after {promoted_at - killed_at:.2f} s "
        f"(down-after 1000 ms); writes failed for {report.error_window:.2f} s "
        f"({report.errors} of {report.attempts} calls: {report.error_kinds}); "
        f"longest call {report.longest_call:.2f} s; acknowledged writes lost: {len(report.lost)}"
    )
    started = time.monotonic()
    sentinel.restart_as_replica(old)
    record(
        f"Sentinel: the old primary, restarted, was made a replica after "
        f"{time.monotonic() - started:.1f} s (until then it is an empty, writable primary)"
    )
    limits_hit(limits_storage(sentinel_url(sentinel), key_prefix="limits").create())


def test_a_write_only_the_primary_saw_is_lost(fresh_sentinel: SentinelTopology, record) -> None:
    """Replication is asynchronous: a write the primary acknowledged before its
    replica received it is gone after the failover. WAIT tells which writes a
    replica has."""
    client = connect(fresh_sentinel.url(), timeouts=FAST)
    client.set("before", "replicated")
    assert client.wait(1, 2000) == 1
    primary, replica = fresh_sentinel.primary(), fresh_sentinel.replica()
    # Freeze the replica, then cut its link: it cannot reconnect.
    replica.pause()
    primary.call("CLIENT", "KILL", "TYPE", "replica")
    wait_until(
        lambda: primary.info("replication")["connected_slaves"] == 0,
        what="the primary to lose its replica",
    )
    assert client.set("after", "acknowledged by the primary alone")
    assert client.wait(1, 100) == 0
    primary.kill()
    replica.resume()
    assert fresh_sentinel.wait_for_new_primary(primary) is replica
    assert client.get("before") == "replicated"
    assert client.get("after") is None
    record("Sentinel: a write acknowledged while the replica lagged was lost in the failover")


def test_without_a_primary_calls_fail_fast(fresh_sentinel: SentinelTopology, record) -> None:
    url = fresh_sentinel.url()
    timeouts = Timeouts(socket=0.3, connect=0.3, retries=1)
    client = connect(url, timeouts=timeouts)
    client.set("k", "v")
    for node in fresh_sentinel.data:
        node.kill()
    took, error = blocked(lambda: client.get("k"))
    assert isinstance(error, redis.ConnectionError) and took < 0.5
    record(f"Sentinel, both data nodes dead: {type(error).__name__} in {took:.3f} s")

    def flagged_down() -> bool:
        states = [fresh_sentinel.master_state(sentinel) for sentinel in fresh_sentinel.sentinels]
        return all(state["is_sdown"] for state in states)

    wait_until(flagged_down, what="the sentinels to flag the primary down")
    took, error = blocked(lambda: client.get("k"))
    assert isinstance(error, MasterNotFoundError) and took < 0.5
    record(f"Sentinel, primary flagged down, no replica: {type(error).__name__} in {took:.3f} s")

    for sentinel in fresh_sentinel.sentinels:
        sentinel.pause()
    took, error = blocked(lambda: connect(url, timeouts=timeouts).get("k"))
    bound = call_bound(url, timeouts)
    assert isinstance(error, MasterNotFoundError)
    assert took <= bound + SLACK
    record(
        f"Sentinel, all sentinels hung, socket=connect=0.3 s, retries=1: "
        f"{type(error).__name__} after {took:.2f} s; call_bound {bound:.2f} s"
    )
