"""Connecting to Redis: one primary, Sentinel or Cluster, over TCP, TLS or a
unix socket, and the same Redis as a `limits` storage for the rate limits.

    connect(url, timeouts=Timeouts())          the client the stores use
    limits_storage(url, key_prefix=..., timeouts=...)
                                               .create(): the rate limits' storage
    parse(url)                                 check a URL without connecting
    call_bound(url, timeouts)                  how long one call may block
    key_slot(key), one_slot(*keys)             Cluster hash slots
    ERRORS                                     every exception meaning "Redis failed"

URL forms (REDIS_URL); [user:]password may be given in every form:

    redis://[[user]:password@]host:port[/db]
    rediss://[[user]:password@]host:port[/db][?ssl_cert_reqs=&ssl_ca_certs=&ssl_check_hostname=]
    unix://[[user]:password@]/path/to/redis.sock[?db=N]
    redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]
        [?sentinel_username=&sentinel_password=]
    rediss+sentinel://...   the same over TLS, with the ssl_* parameters and sentinel_ssl=
    redis+cluster://[[user]:password@]host:port[,host:port...]
    rediss+cluster://...    the same over TLS, with the ssl_* parameters

Query parameters (any other is refused: timeouts come from `Timeouts`, not the URL):

    db=N                        database (one primary, Sentinel); same as the /db path
    ssl_cert_reqs=required      verify the server's certificate (the default) ...
    ssl_cert_reqs=none          ... or encrypt without verifying: Heroku Redis and other
                                platforms hand out self-signed certificates
    ssl_cert_reqs=optional      accepted, but Python's client side treats it as `required`
    ssl_ca_certs=/path/ca.pem   also trust this CA (PEM); the system's CAs stay trusted
    ssl_check_hostname=false    verify the chain but not the name (default: true
                                when verifying)
    sentinel_password=, sentinel_username=
                                the sentinels' credentials. Without them the URL's
                                user:password is sent to the sentinels too (what `limits`
                                does); an empty sentinel_password= means the sentinels have
                                no password (Redis refuses AUTH when none is set)
    sentinel_ssl=false          with rediss+sentinel://, reach the sentinels without TLS

Sentinel: the client asks the sentinels for the primary on every new connection and
drops its pooled connections when the answer changes, so it follows a failover without
a restart; calls fail (ConnectionError) until the sentinels have promoted a replica.
Writes only ever go to the primary; the `limits` storage is told not to read replicas.

Cluster (redis.cluster.RedisCluster). Unlike one primary:

- A Lua script, a MULTI/EXEC pipeline (pipeline(transaction=True)) and any multi-key
  command must touch keys of ONE hash slot, or Redis answers CROSSSLOT. Keys share a
  slot when they share a hash tag: the part between the first `{` and the next `}`,
  e.g. `wx:{u:42}:sessions` and `wx:{u:42}:login`. Check with key_slot()/one_slot().
- A script must get every key it touches through KEYS: a key it builds itself (prefix ..
  token) may live on another node, where Redis refuses it ("non local key").
- A non-transactional pipeline may span slots: it is split per node (one round trip per
  node, not one in all) and may fail part-way.
- There is only database 0; key_prefix and everything else work as before.
- MOVED (a slot moved) and ASK (a slot being migrated) are followed by the client.
  TRYAGAIN (a multi-key command or script while its slot's keys are split between two
  nodes by a migration, e.g. one creating a key) is retried for about 0.4 s, then
  raises ClusterError("TTL exhausted."): such calls fail while their slot migrates.
- redis-py itself refuses a cross-slot script or MULTI/EXEC, with RedisClusterException
  (CrossSlotTransactionError), and a cluster it cannot reach at all raises
  RedisClusterException too: neither is a redis.RedisError. Catch ERRORS.
- RedisCluster reads the slot map while it is built: connect() raises ERRORS when the
  cluster does not answer (with retries=0, one dead primary can be enough).
- PING goes to one node: it says little about the other shards.
- With cluster-require-full-coverage yes (Redis' default), once a primary is marked
  failed every slot answers CLUSTERDOWN until its replica has taken over.

TLS: `rediss` schemes. The same parameters reach the `limits` storage (in its URI for
rediss://, as options for Sentinel and Cluster).

Timeouts: every client, the sentinels' and the `limits` storage's included, gets the
same Timeouts (redis-py 8.1's own defaults are 5 s timeouts and 10 retries with backoff,
which can hold a request for minutes). call_bound() gives the longest a call blocks
while Redis does not answer; a dead process (connection refused) fails at once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from limits.storage import Storage, storage_from_string
from redis.backoff import ConstantBackoff, NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot as _crc_key_slot
from redis.exceptions import RedisClusterException
from redis.retry import Retry
from redis.sentinel import Sentinel

Client = redis.Redis | RedisCluster
Kind = Literal["single", "sentinel", "cluster"]

# Every exception a call through connect()'s client may raise when Redis fails.
ERRORS: tuple[type[Exception], ...] = (redis.RedisError, RedisClusterException)

SINGLE_SCHEMES = {"redis", "rediss", "unix"}
MULTI_SCHEMES: dict[str, tuple[Kind, bool]] = {
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}
SSL_PARAMETERS = {"ssl_cert_reqs", "ssl_ca_certs", "ssl_check_hostname"}
CERT_REQS = {"none", "optional", "required"}
BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True)
class Timeouts:
    """What bounds one call. `socket` limits each read and write, `connect` each
    connection attempt, `retries` the extra attempts after a refused or dropped
    connection (spaced by `backoff` seconds; Cluster ignores the backoff and
    retries on its own terms). call_bound() turns them into the longest a call
    can block.

    A timeout is never retried: the command may have run (a write would run
    twice), and a hung server would only make the caller wait again. retries=1
    is what lets a pooled connection the server closed (idle timeout, restart,
    failover) cost nothing: the first command fails on it, the retry
    reconnects. There is no health-check PING on top of that (it would nest a
    third level of retries)."""

    socket: float = 2.0
    connect: float = 2.0
    retries: int = 1
    backoff: float = 0.0

    def __post_init__(self) -> None:
        if self.socket <= 0 or self.connect <= 0:
            raise ValueError("Redis timeouts must be positive numbers of seconds")
        if self.retries < 0 or self.backoff < 0:
            raise ValueError("Redis retries and backoff cannot be negative")

    def retry(self) -> Retry:
        backoff = ConstantBackoff(self.backoff) if self.backoff else NoBackoff()
        return Retry(backoff, self.retries, supported_errors=(redis.exceptions.ConnectionError,))

    def socket_options(self) -> dict[str, Any]:
        return {"socket_timeout": self.socket, "socket_connect_timeout": self.connect}


@dataclass(frozen=True)
class Target:
    """A parsed REDIS_URL."""

    kind: Kind
    url: str
    nodes: tuple[tuple[str, int], ...] = ()  # the sentinels, or the cluster's startup nodes
    service: str = ""
    db: int = 0
    auth: dict[str, str] = field(default_factory=dict)  # username, password
    sentinel_auth: dict[str, str | None] = field(default_factory=dict)
    tls: dict[str, Any] | None = None  # redis-py ssl_* arguments; None: plain TCP
    sentinel_tls: bool = False


# -- parsing ------------------------------------------------------------------------


def parse(url: str) -> Target:
    """Check a REDIS_URL and take it apart; ValueError names what is wrong."""
    scheme = url.partition("://")[0].lower()
    if scheme in SINGLE_SCHEMES:
        return _parse_single(url, scheme)
    if scheme in MULTI_SCHEMES:
        return _parse_multi(url, *MULTI_SCHEMES[scheme])
    raise ValueError(
        "REDIS_URL must start with redis://, rediss://, unix://, redis+sentinel://, "
        "rediss+sentinel://, redis+cluster:// or rediss+cluster://"
    )


def _query(url: str, allowed: set[str]) -> dict[str, str]:
    query = parse_qs(urlsplit(url).query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(query) - allowed)
    if unknown:
        raise ValueError(
            f"REDIS_URL: unknown parameter(s) {', '.join(unknown)}; "
            f"allowed here: {', '.join(sorted(allowed)) or 'none'}"
        )
    repeated = sorted(name for name, values in query.items() if len(values) > 1)
    if repeated:
        raise ValueError(f"REDIS_URL: parameter(s) given twice: {', '.join(repeated)}")
    return {name: values[0] for name, values in query.items()}


def _parse_single(url: str, scheme: str) -> Target:
    allowed = {"db"} | (SSL_PARAMETERS if scheme == "rediss" else set())
    query = _query(url, allowed)
    tls = _tls(query) if scheme == "rediss" else None
    if scheme == "unix" and not urlsplit(url).path:
        raise ValueError("REDIS_URL: unix:// needs the socket's path")
    db = _int(query["db"], "db") if "db" in query else _path_db(url, scheme)
    return Target("single", url, db=db, tls=tls)


def _path_db(url: str, scheme: str) -> int:
    path = urlsplit(url).path.strip("/")
    if scheme == "unix" or not path:
        return 0
    return _int(path, "the database number in the path")


def _parse_multi(url: str, kind: Kind, tls: bool) -> Target:
    allowed = SSL_PARAMETERS if tls else set()
    if kind == "sentinel":
        allowed = allowed | {"db", "sentinel_username", "sentinel_password"}
        allowed |= {"sentinel_ssl"} if tls else set()
    query = _query(url, allowed)
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    auth = _auth(userinfo)
    nodes = _hosts(hosts)
    tls_options = _tls(query) if tls else None
    if kind == "cluster":
        if parts.path.strip("/"):
            raise ValueError("REDIS_URL: a cluster has only database 0; drop the /path")
        return Target("cluster", url, nodes=nodes, auth=auth, tls=tls_options)
    service, db = _service_and_db(parts.path, query)
    sentinel_tls = _bool(query["sentinel_ssl"], "sentinel_ssl") if "sentinel_ssl" in query else tls
    return Target(
        "sentinel",
        url,
        nodes=nodes,
        service=service,
        db=db,
        auth=auth,
        sentinel_auth=_sentinel_auth(auth, query),
        tls=tls_options,
        sentinel_tls=sentinel_tls,
    )


def _auth(userinfo: str) -> dict[str, str]:
    if not userinfo:
        return {}
    username, has_password, password = userinfo.partition(":")
    auth = {}
    if username:
        auth["username"] = unquote(username)
    if has_password and password:
        auth["password"] = unquote(password)
    return auth


def _hosts(netloc: str) -> tuple[tuple[str, int], ...]:
    nodes = []
    for location in filter(None, (part.strip() for part in netloc.split(","))):
        parsed = urlsplit(f"//{location}")
        try:
            port = parsed.port
        except ValueError:
            port = None
        if not parsed.hostname or port is None:
            raise ValueError(f"REDIS_URL: {location!r} is not host:port")
        nodes.append((parsed.hostname, port))
    if not nodes:
        raise ValueError("REDIS_URL: name at least one host:port")
    return tuple(nodes)


def _service_and_db(path: str, query: Mapping[str, str]) -> tuple[str, int]:
    segments = [unquote(segment) for segment in path.strip("/").split("/") if segment]
    if not segments or len(segments) > 2:
        raise ValueError("REDIS_URL: redis+sentinel:// needs /<master name>[/<db>]")
    db = _int(segments[1], "db") if len(segments) == 2 else 0
    if "db" in query:
        db = _int(query["db"], "db")
    return segments[0], db


def _sentinel_auth(auth: dict[str, str], query: Mapping[str, str]) -> dict[str, str | None]:
    sentinel: dict[str, str | None] = {
        "username": auth.get("username"),
        "password": auth.get("password"),
    }
    for name in ("username", "password"):
        if f"sentinel_{name}" in query:
            sentinel[name] = query[f"sentinel_{name}"] or None
    return sentinel


def _tls(query: Mapping[str, str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if "ssl_cert_reqs" in query:
        if query["ssl_cert_reqs"] not in CERT_REQS:
            raise ValueError("REDIS_URL: ssl_cert_reqs must be none, optional or required")
        options["ssl_cert_reqs"] = query["ssl_cert_reqs"]
    if "ssl_ca_certs" in query:
        if not os.path.isfile(query["ssl_ca_certs"]):
            raise ValueError(f"REDIS_URL: ssl_ca_certs={query['ssl_ca_certs']}: no such file")
        options["ssl_ca_certs"] = query["ssl_ca_certs"]
    if "ssl_check_hostname" in query:
        options["ssl_check_hostname"] = _bool(query["ssl_check_hostname"], "ssl_check_hostname")
    return options


def _int(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise ValueError(f"REDIS_URL: {name} must be a whole number, not {value!r}")
    return number


def _bool(value: str, name: str) -> bool:
    if value.lower() not in BOOLEANS:
        raise ValueError(f"REDIS_URL: {name} must be true or false, not {value!r}")
    return BOOLEANS[value.lower()]


# -- clients ------------------------------------------------------------------------


def connect(url: str, *, timeouts: Timeouts = Timeouts()) -> Client:
    """A client for REDIS_URL with decode_responses=True that fails within
    call_bound(url, timeouts) instead of hanging; see the module docstring."""
    target = parse(url)
    if target.kind == "cluster":
        return _cluster(target, timeouts)
    if target.kind == "sentinel":
        return _sentinel(target, timeouts)
    return redis.Redis.from_url(
        url, decode_responses=True, retry=timeouts.retry(), **timeouts.socket_options()
    )


def _ssl_options(target: Target) -> dict[str, Any]:
    return {"ssl": True, **target.tls} if target.tls is not None else {}


def _sentinel_options(target: Target, timeouts: Timeouts) -> dict[str, Any]:
    """How to reach the sentinels: each is asked once per discovery (the next
    one is the retry), so no retries of their own."""
    options: dict[str, Any] = {
        **timeouts.socket_options(),
        "retry": Retry(NoBackoff(), 0),
        **target.sentinel_auth,
    }
    if target.sentinel_tls:
        options.update(_ssl_options(target))
    return options


def _data_options(target: Target, timeouts: Timeouts) -> dict[str, Any]:
    return {
        **timeouts.socket_options(),
        **target.auth,
        **_ssl_options(target),
    }


def _sentinel(target: Target, timeouts: Timeouts) -> redis.Redis:
    sentinel = Sentinel(
        list(target.nodes),
        sentinel_kwargs=_sentinel_options(target, timeouts),
        **_data_options(target, timeouts),
    )
    return sentinel.master_for(
        target.service, db=target.db, decode_responses=True, retry=timeouts.retry()
    )


def _cluster(target: Target, timeouts: Timeouts) -> RedisCluster:
    # RedisCluster retries a failed call itself (`retry` only sets how often:
    # no backoff), after refreshing its slot map from the nodes it knows.
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
        decode_responses=True,
        retry=Retry(NoBackoff(), timeouts.retries),
        **_data_options(target, timeouts),
    )


# -- limits -------------------------------------------------------------------------


@dataclass(frozen=True)
class LimitsStorage:
    """The same Redis for the `limits` library: the storage URI it parses and
    the options it passes on to redis-py."""

    uri: str
    options: dict[str, Any]

    def create(self) -> Storage:
        return storage_from_string(self.uri, **self.options)


def limits_storage(
    url: str,
    *,
    key_prefix: str,
    timeouts: Timeouts = Timeouts(),
) -> LimitsStorage:
    target = parse(url)
    common = {"key_prefix": key_prefix, **timeouts.socket_options()}
    if target.kind == "single":
        # rediss:// keeps its ssl_* parameters in the URI: redis-py parses them.
        options = {**common, "retry": timeouts.retry()}
        return LimitsStorage(limits_storage_uri(url), options)
    hosts = ",".join(f"{host}:{port}" for host, port in target.nodes)
    if target.kind == "cluster":
        options = {**common, **target.auth, **_ssl_options(target)}
        options["retry"] = Retry(NoBackoff(), timeouts.retries)
        return LimitsStorage(f"redis+cluster://{hosts}", options)
    # limits takes the URI's /path as the service name with every "/" removed:
    # /mymaster/0 would name "mymaster0". So the db goes in the options, and so
    # do the credentials: limits would send the URI's password to the sentinels too.
    options = {
        **common,
        **target.auth,
        **_ssl_options(target),
        "db": target.db,
        "retry": timeouts.retry(),
        "use_replicas": False,  # a replica lags: counts read there would be stale
        "sentinel_kwargs": _sentinel_options(target, timeouts),
    }
    return LimitsStorage(f"redis+sentinel://{hosts}/{target.service}", options)


def limits_storage_uri(redis_url: str) -> str:
    """The URI alone, for one primary: `limits` spells a unix socket redis+unix://.
    Sentinel, Cluster and the timeouts also need the options: use limits_storage()."""
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url.removeprefix("unix://")
    return redis_url


# -- how long a call may block ------------------------------------------------------

CLUSTER_DOWN_PAUSE = 0.25  # redis-py sleeps this long after CLUSTERDOWN before retrying
# redis-py builds a new SSLContext for every TLS connection and loads the
# system's CA store into it: tens of milliseconds of CPU per attempt.
TLS_SETUP = 0.1


def call_bound(
    url: str,
    timeouts: Timeouts = Timeouts(),
    *,
    cluster_nodes: int = 6,
) -> float:
    """The longest one call through connect(url, timeouts=timeouts) blocks
    while nothing answers, before it raises one of ERRORS; the service answers
    503 after at most this long (plus its own work). `cluster_nodes`: how many
    nodes a Cluster client may ask for the slot map (primaries and replicas).

    "Nothing answers": a connection attempt fails after at most
    A = max(connect, socket) (the connect timeout when the host drops packets,
    the socket timeout when a hung process accepted the connection but sends
    no TLS handshake or HELLO reply), plus TLS_SETUP over TLS, and a call on an
    established connection fails after `socket`. A refused connection (a dead
    process on a live host) fails at once. Derived from redis-py 8.1's retry
    structure, checked by tests/topologies:

    - one primary: a timeout ends the call (it is never retried); a refused
      or dropped connection is retried, each retry after `backoff`, and a
      retry that hangs ends with its timeout: A + r x backoff.
    - Sentinel: each connection attempt first asks the sentinels one after
      the other (each fails after A), and "no primary known" counts as a
      dropped connection, so each of r + 1 attempts costs (sentinels + 1) x A.
    - Cluster: each of r + 1 attempts costs one failed connection (A), then a
      refresh of the slot map that asks every known node (A each) and a
      CLUSTERDOWN pause; when no node answers the refresh raises
      RedisClusterException and the retries stop early.
    """
    target = parse(url)
    r, b = timeouts.retries, timeouts.backoff
    attempt = max(timeouts.connect, timeouts.socket) + (TLS_SETUP if target.tls is not None else 0)
    if target.kind == "cluster":
        return (r + 1) * ((cluster_nodes + 1) * attempt + CLUSTER_DOWN_PAUSE)
    if target.kind == "sentinel":
        return (r + 1) * (len(target.nodes) + 1) * attempt + r * b
    return attempt + r * b


# -- Cluster hash slots -------------------------------------------------------------


def key_slot(key: str) -> int:
    """The Cluster hash slot of a key (CRC16 of its hash tag, or of the whole key)."""
    return _crc_key_slot(key.encode())


class CrossSlot(ValueError):
    pass


def one_slot(*keys: str) -> int:
    """The one slot all these keys hash to; CrossSlot if they do not share one, as
    a script's KEYS or a MULTI/EXEC pipeline must on Cluster."""
    slots = {key: key_slot(key) for key in keys}
    if len(set(slots.values())) != 1:
        detail = ", ".join(f"{key} -> {slot}" for key, slot in slots.items())
        raise CrossSlot(f"keys in different hash slots: {detail}")
    return next(iter(slots.values()))
