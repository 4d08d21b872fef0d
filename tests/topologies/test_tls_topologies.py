"""Sentinel and Cluster over TLS (rediss+sentinel://, rediss+cluster://), as
managed platforms run them with in-transit encryption."""

from __future__ import annotations

import pytest
from redis.sentinel import MasterNotFoundError

from dev.topologies import ClusterTopology, SentinelTopology
from infra.redis import connect, limits_storage
from support.redis_checks import FAST, exercise, limits_hit, service_limit_counts, tagged


def test_sentinel_over_tls(tls_sentinel: SentinelTopology) -> None:
    assert tls_sentinel.tls
    url = tls_sentinel.url(
        scheme="rediss+sentinel", query=f"ssl_ca_certs={tls_sentinel.tls.ca_cert}"
    )
    exercise(connect(url, timeouts=FAST), tagged("tls-sentinel"))
    storage = limits_storage(url, key_prefix="limits", timeouts=FAST)
    limits_hit(storage.create())
    service_limit_counts(storage)


def test_sentinel_over_tls_without_our_ca_is_refused(tls_sentinel: SentinelTopology) -> None:
    url = tls_sentinel.url(scheme="rediss+sentinel")
    # Every sentinel fails the handshake, so no primary can be found; redis-py's
    # message names each sentinel but not the certificate error.
    with pytest.raises(MasterNotFoundError, match="network:ConnectionError"):
        connect(url, timeouts=FAST).ping()


def test_cluster_over_tls(tls_cluster: ClusterTopology) -> None:
    assert tls_cluster.tls
    for query in (f"ssl_ca_certs={tls_cluster.tls.ca_cert}", "ssl_cert_reqs=none"):
        url = tls_cluster.url(scheme="rediss+cluster", query=query)
        exercise(connect(url, timeouts=FAST), tagged("tls-cluster"))
        storage = limits_storage(url, key_prefix="limits", timeouts=FAST)
        limits_hit(storage.create())
        service_limit_counts(storage)


def test_cluster_over_tls_without_our_ca_is_refused(tls_cluster: ClusterTopology) -> None:
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        connect(tls_cluster.url(scheme="rediss+cluster"), timeouts=FAST)
