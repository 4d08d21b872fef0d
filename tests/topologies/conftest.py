"""The topologies tier: connect() and the `limits` storage against real
Sentinel, Cluster and TLS deployments, started from the machine's
redis-server by dev/topologies.py, including failovers and slot
migrations under load.

Opt-in: these tests start and kill a few dozen redis-server processes, so the
plain test command skips them unless TEST_TOPOLOGIES=1 (.ci/run sets it). The
URL tests need no server and always run. The numbers the tests measure
(failover times, error windows, how long a call blocks) are printed at the
end of the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dev.topologies import (
    ClusterTopology,
    SentinelTopology,
    SingleRedis,
    TlsFiles,
    make_tls_files,
    missing_tools,
)

ENABLED = os.environ.get("TEST_TOPOLOGIES") == "1"
HERE = Path(__file__).parent
MEASURED: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ENABLED:
        return
    skip = pytest.mark.skip(reason="starts real Redis topologies: set TEST_TOPOLOGIES=1")
    for item in items:
        # Every fixture that starts a server depends on redis_binaries, and
        # fixturenames holds a test's whole fixture closure.
        if HERE in item.path.parents and "redis_binaries" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if MEASURED:
        terminalreporter.section("measured on real Redis topologies")
        for line in MEASURED:
            terminalreporter.write_line(line)


@pytest.fixture
def record() -> Any:
    """Note a measured number for the end-of-run summary."""
    return MEASURED.append


@pytest.fixture(scope="session")
def redis_binaries() -> None:
    missing = missing_tools()
    if missing:
        pytest.fail(f"TEST_TOPOLOGIES=1, but {', '.join(missing)} is not installed")


@pytest.fixture(scope="session")
def tls_files(redis_binaries: None, tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def single(redis_binaries: None, tmp_path: Path) -> Iterator[SingleRedis]:
    with SingleRedis(tmp_path / "redis") as topology:
        yield topology


@pytest.fixture
def tls_single(tls_files: TlsFiles, tmp_path: Path) -> Iterator[SingleRedis]:
    with SingleRedis(tmp_path / "redis", tls_files) as topology:
        yield topology


@pytest.fixture(scope="module")
def sentinel(
    redis_binaries: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SentinelTopology]:
    """Shared by a module; a test that fails it over leaves it working."""
    directory = tmp_path_factory.mktemp("sentinel")
    with SentinelTopology(directory, password="data-pw", sentinel_password="sentinel-pw") as t:
        yield t


@pytest.fixture
def fresh_sentinel(redis_binaries: None, tmp_path: Path) -> Iterator[SentinelTopology]:
    """One test's own, for tests that leave it broken."""
    with SentinelTopology(tmp_path / "sentinel") as topology:
        yield topology


@pytest.fixture(scope="module")
def tls_sentinel(
    tls_files: TlsFiles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SentinelTopology]:
    with SentinelTopology(tmp_path_factory.mktemp("tls-sentinel"), tls=tls_files) as topology:
        yield topology


@pytest.fixture(scope="module")
def cluster(
    redis_binaries: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClusterTopology]:
    """Three primaries with a replica each, shared by a module."""
    with ClusterTopology(tmp_path_factory.mktemp("cluster")) as topology:
        yield topology


@pytest.fixture
def fresh_cluster(redis_binaries: None, tmp_path: Path) -> Iterator[ClusterTopology]:
    """Three primaries without replicas, for tests that leave it broken."""
    with ClusterTopology(tmp_path / "cluster", replicas=0) as topology:
        yield topology


@pytest.fixture(scope="module")
def tls_cluster(
    tls_files: TlsFiles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClusterTopology]:
    directory = tmp_path_factory.mktemp("tls-cluster")
    with ClusterTopology(directory, replicas=0, tls=tls_files) as topology:
        yield topology
