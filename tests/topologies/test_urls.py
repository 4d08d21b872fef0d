"""REDIS_URL forms, the `limits` storage each one becomes, and the Cluster slot
helpers. No server needed: this module runs in the plain test command too."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from infra.redis import (
    ERRORS,
    CrossSlot,
    Timeouts,
    call_bound,
    key_slot,
    limits_storage,
    limits_storage_uri,
    one_slot,
    parse,
)


@pytest.fixture
def ca_file(tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    path.write_text("not read while parsing")
    return str(path)


def test_one_primary_forms_pass_through_to_redis_py() -> None:
    assert parse("redis://:pw@h:6380/2").db == 2
    assert parse("redis://h:6380?db=3").db == 3
    assert parse("unix:///run/redis.sock?db=1").db == 1
    assert parse("rediss://h:6380/0").tls == {}
    assert parse("redis://h:6380").tls is None


def test_tls_parameters(ca_file: str) -> None:
    target = parse(f"rediss://h:1/0?ssl_cert_reqs=none&ssl_ca_certs={ca_file}")
    assert target.tls == {"ssl_cert_reqs": "none", "ssl_ca_certs": ca_file}
    target = parse("rediss+cluster://h:1?ssl_check_hostname=false")
    assert target.tls == {"ssl_check_hostname": False}


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("redis://h:1?ssl_cert_reqs=none", "unknown parameter(s) ssl_cert_reqs"),
        ("rediss://h:1?ssl_cert_reqs=maybe", "none, optional or required"),
        ("rediss://h:1?ssl_ca_certs=/no/such/ca.pem", "no such file"),
        ("redis://h:1?socket_timeout=9", "unknown parameter(s) socket_timeout"),
        ("redis://h:1?db=1&db=2", "given twice"),
        ("redis://h:1/x", "database number"),
        ("redis+sentinel://h:1", "needs /<master name>"),
        ("redis+sentinel://h:1/a/b/c", "needs /<master name>"),
        ("redis+sentinel://h/mymaster", "is not host:port"),
        ("redis+sentinel://h:1/mymaster?sentinel_ssl=true", "unknown parameter"),
        ("redis+cluster://h:1/0", "only database 0"),
        ("redis+cluster://h:1?db=0", "unknown parameter"),
        ("memcached://h:1", "must start with"),
    ],
)
def test_mistakes_are_named(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        parse(url)


def test_sentinel_url() -> None:
    target = parse("redis+sentinel://:p%40ss@a:26379,b:26380/mymaster/3")
    assert target.kind == "sentinel"
    assert target.nodes == (("a", 26379), ("b", 26380))
    assert (target.service, target.db) == ("mymaster", 3)
    assert target.auth == {"password": "p@ss"}
    # As in `limits`: the URL's password goes to the sentinels too, unless told otherwise.
    assert target.sentinel_auth == {"username": None, "password": "p@ss"}
    assert parse("redis+sentinel://:pw@a:1/m?sentinel_password=").sentinel_auth["password"] is None
    other = parse("redis+sentinel://u:pw@a:1/m?sentinel_password=s&sentinel_username=su")
    assert other.sentinel_auth == {"username": "su", "password": "s"}
    assert other.auth == {"username": "u", "password": "pw"}


def test_sentinel_tls_defaults_to_tls_everywhere() -> None:
    assert parse("rediss+sentinel://a:1/m").sentinel_tls is True
    assert parse("rediss+sentinel://a:1/m?sentinel_ssl=false").sentinel_tls is False
    assert parse("redis+sentinel://a:1/m").sentinel_tls is False


def test_limits_storage_for_one_primary_keeps_the_url(ca_file: str) -> None:
    url = f"rediss://:pw@h:1/2?ssl_cert_reqs=none&ssl_ca_certs={ca_file}"
    storage = limits_storage(url, key_prefix="wx:limits", timeouts=Timeouts(0.5, 0.25, 2))
    assert storage.uri == url  # redis-py reads the ssl_* parameters from it
    assert storage.options["key_prefix"] == "wx:limits"
    assert storage.options["socket_timeout"] == 0.5
    assert storage.options["socket_connect_timeout"] == 0.25
    assert storage.options["retry"].get_retries() == 2
    assert limits_storage("unix:///tmp/r.sock", key_prefix="p").uri == "redis+unix:///tmp/r.sock"
    assert limits_storage_uri("unix:///tmp/r.sock") == "redis+unix:///tmp/r.sock"


def test_limits_storage_for_sentinel_works_around_limits_parsing(ca_file: str) -> None:
    url = (
        "rediss+sentinel://:pw@a:1,b:2/mymaster/4"
        f"?sentinel_password=&ssl_ca_certs={ca_file}&sentinel_ssl=false"
    )
    storage = limits_storage(url, key_prefix="p")
    # limits would read /mymaster/4 as the service "mymaster4", and send the
    # URI's password to the sentinels too.
    assert storage.uri == "redis+sentinel://a:1,b:2/mymaster"
    options = storage.options
    assert (options["db"], options["password"], options["use_replicas"]) == (4, "pw", False)
    assert (options["ssl"], options["ssl_ca_certs"]) == (True, ca_file)
    assert options["sentinel_kwargs"]["password"] is None
    assert "ssl" not in options["sentinel_kwargs"]


def test_limits_storage_for_cluster() -> None:
    storage = limits_storage("rediss+cluster://:pw@a:1,b:2?ssl_cert_reqs=none", key_prefix="p")
    assert storage.uri == "redis+cluster://a:1,b:2"
    assert storage.options["password"] == "pw"
    assert (storage.options["ssl"], storage.options["ssl_cert_reqs"]) == (True, "none")


def test_call_bound_grows_with_retries_and_sentinels() -> None:
    fast = Timeouts(socket=0.5, connect=0.5, retries=0)
    assert call_bound("redis://h:1", fast) == 0.5
    # A timeout is never retried: retries only follow a refused connection, at once.
    assert call_bound("redis://h:1", Timeouts(socket=0.5, connect=0.5, retries=1)) == 0.5
    assert (
        call_bound("redis://h:1", Timeouts(socket=0.5, connect=0.5, retries=2, backoff=0.1)) == 0.7
    )
    assert call_bound("redis+sentinel://a:1,b:1,c:1/m", fast) == 2.0
    assert call_bound("redis+cluster://a:1", fast, cluster_nodes=6) == 3.75


def test_key_slot_and_hash_tags() -> None:
    assert key_slot("foo") == 12182  # the example in the Cluster specification
    assert key_slot("{user1000}.following") == key_slot("{user1000}.followers")
    assert one_slot("wx:{u:1}:sessions", "wx:{u:1}:login") == key_slot("u:1")
    with pytest.raises(CrossSlot, match="different hash slots"):
        one_slot("wx:user:1:sessions", "wx:user:1:login")


def test_errors_cover_cluster_exceptions() -> None:
    assert redis.RedisError in ERRORS
    assert any(issubclass(redis.exceptions.SlotNotCoveredError, error) for error in ERRORS)
