"""One primary: TLS in each trust mode, and how long a call blocks, with what
error, when the primary is gone or hung."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from dev.topologies import SingleRedis, make_tls_files
from infra.redis import Timeouts, call_bound, connect, limits_storage
from support.redis_checks import blocked, exercise, limits_hit, service_limit_counts, tagged

# What scheduling and TLS set-up may add to a measured wait on a busy machine.
SLACK = 0.5


@pytest.mark.parametrize("trust", ["url_trusting_ca", "url_without_verification"])
def test_tls_works(tls_single: SingleRedis, trust: str) -> None:
    url = getattr(tls_single, trust)()
    exercise(connect(url), tagged("tls"))
    storage = limits_storage(url, key_prefix="limits")
    limits_hit(storage.create())
    service_limit_counts(storage)


def test_optional_verification_is_required_verification_on_the_client(
    tls_single: SingleRedis,
) -> None:
    """Python's ssl treats CERT_OPTIONAL like CERT_REQUIRED on the client side:
    a server always sends a certificate, so it is always verified."""
    assert tls_single.tls
    trusted = tls_single.url(f"ssl_cert_reqs=optional&ssl_ca_certs={tls_single.tls.ca_cert}")
    assert connect(trusted).ping()
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        connect(tls_single.url("ssl_cert_reqs=optional")).ping()


def test_tls_verification_without_our_ca_is_refused(tls_single: SingleRedis) -> None:
    url = tls_single.url_verifying_without_ca()
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        connect(url).ping()
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        limits_hit(limits_storage(url, key_prefix="limits").create())


def test_tls_checks_the_host_name(tmp_path: Path, redis_binaries: None) -> None:
    """A certificate for another name (as when a platform's certificate names
    its host name and the client dials an address) is refused unless
    ssl_check_hostname=false."""
    tls = make_tls_files(tmp_path / "tls", names=("DNS:redis.example.internal",))
    with SingleRedis(tmp_path / "redis", tls) as topology:
        url = topology.url_trusting_ca()
        with pytest.raises(redis.ConnectionError, match="IP address mismatch"):
            connect(url).ping()
        assert connect(f"{url}&ssl_check_hostname=false").ping()


def test_plain_tcp_to_a_tls_port_fails_within_the_bound(tls_single: SingleRedis) -> None:
    timeouts = Timeouts(socket=0.3, connect=0.3, retries=1)
    url = tls_single.url().replace("rediss://", "redis://")
    took, error = blocked(lambda: connect(url, timeouts=timeouts).ping())
    assert isinstance(error, redis.ConnectionError | redis.TimeoutError)
    assert took <= call_bound(url, timeouts) + SLACK


@pytest.mark.parametrize("retries", [0, 1, 2])
@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_a_hung_primary_blocks_a_call_at_most_the_bound(
    request: pytest.FixtureRequest, redis_binaries: None, record, retries: int, tls: bool
) -> None:
    """SIGSTOP: the kernel still accepts connections, nothing answers. A call on
    a pooled connection and one needing a new connection both end in
    TimeoutError within call_bound()."""
    topology: SingleRedis = request.getfixturevalue("tls_single" if tls else "single")
    url = topology.url_trusting_ca() if tls else topology.url()
    timeouts = Timeouts(socket=0.2, connect=0.2, retries=retries)
    pooled = connect(url, timeouts=timeouts)
    pooled.set("k", "v")
    topology.node.pause()
    fresh_took, fresh_error = blocked(lambda: connect(url, timeouts=timeouts).get("k"))
    pooled_took, pooled_error = blocked(lambda: pooled.get("k"))
    topology.node.resume()
    bound = call_bound(url, timeouts)
    assert isinstance(fresh_error, redis.TimeoutError), fresh_error
    assert isinstance(pooled_error, redis.TimeoutError), pooled_error
    assert fresh_took <= bound + SLACK and pooled_took <= bound + SLACK
    # A timeout is never retried, whatever `retries` says: one wait, not several.
    assert 0.2 <= pooled_took < 2 * 0.2
    record(
        f"one primary ({'TLS' if tls else 'TCP'}) hung, socket=connect=0.2 s, "
        f"retries={retries}: new connection {fresh_took:.2f} s, pooled {pooled_took:.2f} s, "
        f"{type(pooled_error).__name__}; call_bound {bound:.2f} s"
    )


def test_a_dead_primary_fails_a_call_at_once(single: SingleRedis, record) -> None:
    timeouts = Timeouts(socket=2.0, connect=2.0, retries=2)
    client = connect(single.url(), timeouts=timeouts)
    client.set("k", "v")
    single.node.kill()
    took, error = blocked(lambda: client.get("k"))
    assert isinstance(error, redis.ConnectionError)
    assert took < 0.5
    record(f"one primary SIGKILLed (connection refused): {type(error).__name__} in {took:.3f} s")
