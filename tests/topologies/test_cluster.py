"""Cluster: three primaries with a replica each. Calls keep working through a
graceful failover, a SIGKILLed primary and a slot migration while a loop of
reads and writes runs; what a shard or the whole cluster being gone costs."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import pytest
import redis
from redis.exceptions import ClusterDownError, RedisClusterException

from dev.topologies import ClusterTopology, Node, Probe, ProbeReport
from dev.waiting import wait_until
from infra.redis import (
    ERRORS,
    RedisCluster,
    Timeouts,
    call_bound,
    connect,
    key_slot,
    limits_storage,
)
from support.redis_checks import (
    FAST,
    MOVE_SCRIPT,
    blocked,
    exercise,
    limits_hit,
    service_limit_counts,
    tagged,
)

SLACK = 0.5


def test_reads_writes_pipelines_and_scripts(cluster: ClusterTopology) -> None:
    client = connect(cluster.url(), timeouts=FAST)
    assert isinstance(client, RedisCluster)
    for name in ("a", "b", "c", "d"):  # tags that land on different primaries
        exercise(client, tagged(name))


def test_key_slot_agrees_with_the_server(cluster: ClusterTopology) -> None:
    node = cluster.nodes[0]
    for key in ("foo", "wx:{u:1}:sessions", "{}x", "a{b}c{d}", "{user1000}.following"):
        assert key_slot(key) == node.call("CLUSTER", "KEYSLOT", key)


def test_what_cluster_refuses(cluster: ClusterTopology, record) -> None:
    """The constraints the key layout must meet: one slot per script and
    transaction; a script may not reach keys it was not given on another node.
    Non-transactional pipelines may span slots (one round trip per node)."""
    client = connect(cluster.url(), timeouts=FAST)
    apart = ["wx:user:1:a", "wx:user:1:b"]
    assert key_slot(apart[0]) != key_slot(apart[1])
    # redis-py refuses a cross-slot script itself, with RedisClusterException.
    with pytest.raises(RedisClusterException, match="same key slot"):
        client.register_script(MOVE_SCRIPT)(keys=apart, args=[1000])
    pipe = client.pipeline(transaction=True)
    pipe.set(apart[0], 1)
    pipe.set(apart[1], 1)
    with pytest.raises(ERRORS) as refused:
        pipe.execute()
    record(f"Cluster: a cross-slot MULTI/EXEC raised {type(refused.value).__name__}")
    pipe = client.pipeline(transaction=False)
    pipe.set(apart[0], "x")
    pipe.get(apart[1])
    assert pipe.execute() == [True, None]
    elsewhere = next(f"other:{i}" for i in range(100) if _on_another_node(cluster, apart[0], i))
    reach = client.register_script("return redis.call('GET', ARGV[1])")
    with pytest.raises(redis.ResponseError, match="non local key"):
        reach(keys=[apart[0]], args=[elsewhere])


def _on_another_node(cluster: ClusterTopology, key: str, i: int) -> bool:
    other = key_slot(f"other:{i}")
    return cluster.primary_for_slot(other) is not cluster.primary_for_slot(key_slot(key))


def test_limits_storage(cluster: ClusterTopology) -> None:
    storage = limits_storage(cluster.url(), key_prefix="limits", timeouts=FAST)
    limits_hit(storage.create())
    service_limit_counts(storage)


# -- under load -------------------------------------------------------------------


def writes(client: RedisCluster, prefix: str) -> Probe:
    """Each round: a new key written, then read, in `prefix`'s slot."""

    def round_trip(i: int) -> tuple[str, str]:
        key = f"{prefix}:w{i}"
        client.set(key, str(i))
        assert client.get(key) == str(i)
        return key, str(i)

    return Probe(round_trip)


def scripts(client: RedisCluster, prefix: str) -> Probe:
    """Each round: a two-key script creating a new key in `prefix`'s slot."""
    move = client.register_script(MOVE_SCRIPT)

    def round_trip(i: int) -> tuple[str, str]:
        key = f"{prefix}:s{i}"
        client.set(f"{prefix}:scratch", str(i))
        assert move(keys=[f"{prefix}:scratch", key], args=[600_000]) == 1
        return key, str(i)

    return Probe(round_trip)


ProbeFactory = Callable[[RedisCluster], Probe]


def under_load(
    cluster: ClusterTopology, probes: dict[str, ProbeFactory], action: Callable[[], object]
) -> tuple[dict[str, ProbeReport], float]:
    """Run `action` while each probe loops on its own client; every probe must
    work again afterwards. Returns each probe's report and how long `action` took."""
    clients = {name: connect(cluster.url(), timeouts=FAST) for name in probes}
    running = {name: make(clients[name]) for name, make in probes.items()}  # type: ignore[arg-type]
    with contextlib.ExitStack() as stack:
        for probe in running.values():
            stack.enter_context(probe)
        started = time.monotonic()
        action()
        took = time.monotonic() - started
        done = time.monotonic()
        wait_until(
            lambda: all(probe.successes_since(done) >= 10 for probe in running.values()),
            what="every probe to succeed again",
        )
    return {name: probe.report(clients[name].get) for name, probe in running.items()}, took


def spread_prefixes(cluster: ClusterTopology) -> tuple[str, str]:
    """Two prefixes whose slots are on different primaries."""
    first = tagged("hit")
    owner = cluster.primary_for_slot(key_slot(first))
    while True:
        second = tagged("spared")
        if cluster.primary_for_slot(key_slot(second)) is not owner:
            return first, second


def describe(reports: dict[str, ProbeReport]) -> str:
    return "; ".join(f"{name}: {summary(report)}" for name, report in reports.items())


def summary(report: ProbeReport) -> str:
    failed = f"{report.errors} of {report.attempts} rounds failed"
    if report.errors:
        failed += f" over {report.error_window:.2f} s {report.examples}"
    return f"{failed}, longest round {report.longest_call:.2f} s, lost writes {len(report.lost)}"


def test_graceful_failover_under_load(cluster: ClusterTopology, record) -> None:
    affected, spared = spread_prefixes(cluster)
    primary = cluster.primary_for_slot(key_slot(affected))
    reports, took = under_load(
        cluster,
        {
            "writes in the slot": lambda client: writes(client, affected),
            "scripts in the slot": lambda client: scripts(client, affected),
            "another primary's slot": lambda client: writes(client, spared),
        },
        lambda: cluster.graceful_failover(primary),
    )
    assert cluster.primary_for_slot(key_slot(affected)) is not primary
    # The replica caught up before taking over: nothing lost, nothing refused.
    assert not any(report.lost or report.errors for report in reports.values()), reports
    record(f"Cluster CLUSTER FAILOVER ({took:.2f} s): {describe(reports)}")
    cluster.wait_ok()


def test_sigkilled_primary_under_load(cluster: ClusterTopology, record) -> None:
    affected, spared = spread_prefixes(cluster)
    primary = cluster.primary_for_slot(key_slot(affected))
    killed_at: list[float] = []

    def kill() -> Node:
        killed_at.append(time.monotonic())
        return cluster.kill_primary(primary)

    reports, took = under_load(
        cluster,
        {
            "writes in the slot": lambda client: writes(client, affected),
            "another primary's slot": lambda client: writes(client, spared),
        },
        kill,
    )
    assert reports["writes in the slot"].errors, "nothing serves the slot until the promotion"
    for report in reports.values():
        assert all(at < killed_at[0] for at in report.lost.values())
        assert set(report.error_kinds) <= {"ConnectionError", "TimeoutError", "ClusterDownError"}
    record(
        f"Cluster SIGKILL primary (cluster-node-timeout 1000 ms): replica promoted after "
        f"{took:.2f} s; {describe(reports)}"
    )
    started = time.monotonic()
    cluster.restart(primary)
    assert cluster.replica_of(cluster.primary_for_slot(key_slot(affected))) is primary
    record(
        f"Cluster: the killed primary was a replica again {time.monotonic() - started:.2f} s later"
    )


def test_slot_migration_under_load(cluster: ClusterTopology, record) -> None:
    affected, spared = spread_prefixes(cluster)
    slot = key_slot(affected)
    client = connect(cluster.url(), timeouts=FAST)
    for i in range(2000):  # keys to migrate while the probes run
        client.set(f"{affected}:filler:{i}", "x")
    source = cluster.primary_for_slot(slot)
    target = cluster.primary_for_slot(key_slot(spared))
    reports, took = under_load(
        cluster,
        {
            "writes in the slot": lambda client: writes(client, affected),
            "scripts in the slot": lambda client: scripts(client, affected),
        },
        lambda: cluster.move_slots([slot], target, batch=20),
    )
    assert cluster.primary_for_slot(slot) is target is not source
    assert client.get(f"{affected}:filler:1999") == "x"
    assert not any(report.lost for report in reports.values())
    # Single-key calls follow ASK and MOVED without an error.
    assert not reports["writes in the slot"].errors
    # A script over two keys, one of them new, gets TRYAGAIN from the importing
    # node while the slot's keys are split between the nodes; redis-py retries
    # for about 0.4 s, then raises ClusterError("TTL exhausted.").
    assert set(reports["scripts in the slot"].error_kinds) <= {"ClusterError", "TryAgainError"}
    record(f"Cluster slot migration (2000 keys, {took:.2f} s): {describe(reports)}")
    cluster.wait_ok()


# -- nothing to answer --------------------------------------------------------------


def test_a_lost_shard_and_a_lost_cluster(fresh_cluster: ClusterTopology, record) -> None:
    """Without replicas: a dead primary's slots fail at once; once the others
    mark it failed the whole cluster refuses (cluster-require-full-coverage);
    with every node hung, calls end in RedisClusterException, which is not a
    redis.RedisError."""
    timeouts = Timeouts(socket=0.3, connect=0.3, retries=1)
    url = fresh_cluster.url()
    client = connect(url, timeouts=timeouts)
    dead, alive = spread_prefixes(fresh_cluster)
    client.set(alive, "v")
    victim = fresh_cluster.primary_for_slot(key_slot(dead))
    survivor = fresh_cluster.primary_for_slot(key_slot(alive))
    victim.kill()

    took, error = blocked(lambda: client.get(dead))
    assert isinstance(error, redis.ConnectionError) and took < 1
    record(f"Cluster, a shard's primary dead, no replica: {type(error).__name__} in {took:.3f} s")

    wait_until(
        lambda: "cluster_state:fail" in survivor.call("CLUSTER", "INFO"),
        what="the survivors to declare the cluster down",
    )
    took, error = blocked(lambda: client.get(alive))
    assert isinstance(error, ClusterDownError)
    assert took <= call_bound(url, timeouts, cluster_nodes=3) + SLACK
    record(
        f"Cluster down (coverage lost): other slots fail, {type(error).__name__} in {took:.2f} s"
    )

    for node in fresh_cluster.live():
        node.pause()
    took, error = blocked(lambda: client.get(alive))
    bound = call_bound(url, timeouts, cluster_nodes=3)
    assert isinstance(error, RedisClusterException) and not isinstance(error, redis.RedisError)
    assert took <= bound + SLACK
    built_took, built_error = blocked(lambda: connect(url, timeouts=timeouts))
    assert isinstance(built_error, RedisClusterException)
    assert built_took <= bound + SLACK
    record(
        f"Cluster, every node hung, socket=connect=0.3 s, retries=1: a call raised "
        f"{type(error).__name__} after {took:.2f} s, connect() after {built_took:.2f} s; "
        f"call_bound {bound:.2f} s"
    )
