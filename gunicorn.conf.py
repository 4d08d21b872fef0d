"""gunicorn settings; Heroku-style platforms set PORT and WEB_CONCURRENCY.

The worker model is gevent (README, "Reliability"): a login waiting seconds
on WeChat, or a client sending its headers a byte at a time, holds a
greenlet, not one of a few threads, so reads keep being answered. The
numbers behind the choice: `make bench-workers`.
"""

import os

worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gevent")
if worker_class == "gevent":
    # gunicorn's gevent worker patches the standard library when the worker
    # starts, after on_starting (below) has imported the app, and ssl with it,
    # in the master: too late, HTTPS calls then fail with RecursionError
    # (gevent#1016). Patch first, before anything else is imported.
    from gevent import monkey

    monkey.patch_all()

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gevent: connections one worker serves at once (gunicorn's default).
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000"))
# gthread only (GUNICORN_WORKER_CLASS=gthread).
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 30
graceful_timeout = 20
# gevent: also the longest a client may take to send its request headers.
keepalive = 5
# gunicorn 25+ opens a control socket at one fixed path per user; several
# instances on one host would fight over it, and platforms have no use for it.
control_socket_disable = True
# gunicorn takes SCRIPT_NAME (and PATH_INFO) from a request header when the
# peer is in forwarded_allow_ips (loopback by default), and answers 500 when
# the path does not start with it. The service is always mounted at /: such
# headers are dropped like any other header with an underscore.
forwarder_headers = ""
accesslog = "-"
# The request line never carries a secret: tokens travel in headers only.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms pid=%(p)s rid=%({x-request-id}o)s'


def on_starting(server):
    """Runs once in the master, before any worker: refuse a broken
    configuration with a clear message, and set up the embedded defaults
    (one Redis for every worker, the SQLite schema) when nothing is configured.

    Imports live here: every module-level name in this file is read as a
    gunicorn setting, and `config` is one."""
    # First, before anything imports prometheus_client: the workers' metrics
    # directory (infra/multiproc.py).
    from infra import multiproc

    # master_pid is set in the new master of a USR2 upgrade.
    multiproc.prepare(os.environ, reexec=server.master_pid != 0)

    import config
    from app import prepare_embedded, secrets
    from infra import logs

    try:
        settings = config.load()
        config.validate(settings)
    except config.ConfigError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    logs.configure_gunicorn(server.log, secrets(settings), settings["LOG_FORMAT"])
    prepare_embedded(os.environ)
    _linger["bytes"] = max(16 << 20, 2 * settings["AVATAR_MAX_BYTES"])


def pre_request(worker, req):
    """Promise keep-alive only for a request whose body has been read to its end.

    gunicorn writes the answer's Connection header before it drains what the
    application left of the request body, and that drain can fail: a body
    the application never read (a 401 or 404 with a body, a 413) is drained
    64 KiB at most, a malformed chunk stops it, so does a client that stops
    sending. gunicorn then closes a connection the answer said it would
    keep, and the client's next request on it is lost (or, after a malformed
    chunk, answered by an error meant for the previous one). Deciding when
    the head is written, from what has been read, keeps the promise true."""
    keeps_alive_otherwise = req.should_close
    req.should_close = lambda: keeps_alive_otherwise() or not _body_read(req)


# What an answer given before the body was read drains of it: the largest
# upload the service takes, with room to spare (on_starting reads
# AVATAR_MAX_BYTES), for a few seconds at most.
_linger = {"bytes": 16 << 20, "seconds": 5.0}


def post_request(worker, req, environ, resp):
    """Lingering close. An answer given before the request body was read (a
    401 to wx.uploadFile on an ended session, a 404, a 413) closes the
    connection (pre_request), and closing with unread bytes makes the kernel
    reset it: a client still sending then gets EPIPE or ECONNRESET, and one
    that gives up on a failed write (the mini program's uploadFile, Node's
    fetch) never reads the answer. Reading and discarding the rest first, as
    web servers do, lets it finish sending and read the answer."""
    if req is not None and not _body_read(req):
        _drain(req)


def _drain(req) -> None:
    import contextlib
    import time

    sock = getattr(req.unreader, "sock", None)
    prior = sock.gettimeout() if sock is not None else None
    deadline, drained = time.monotonic() + _linger["seconds"], 0
    try:
        while drained < _linger["bytes"]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if sock is not None:
                sock.settimeout(remaining)
            data = req.body.read(65536)
            if not data:
                return
            drained += len(data)
    except Exception:  # a timeout, a reset, malformed framing: it closes as before
        return
    finally:
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(prior)


def _body_read(req) -> bool:
    """Whether the request body has been read to its end, from gunicorn 27's
    Body and readers; anything unrecognised counts as unread (the connection
    then closes, which is always safe)."""
    from gunicorn.http.body import ChunkedReader, LengthReader

    body = req.body
    if body is None or getattr(body, "failed", True) or body.buf.tell():
        return False
    reader = body.reader
    if isinstance(reader, LengthReader):
        return reader.length == 0
    if isinstance(reader, ChunkedReader):
        return reader.parser is None and not reader.buf.tell()
    return False


def post_worker_init(worker):
    """gunicorn answers by itself what never reaches the application: a
    request line, header section or framing it cannot parse, a URL or headers
    over its limits. Those answers keep the service's error contract too:
    JSON `{"code", "error", "message"}`, `bad_request` with gunicorn's status
    (400, or 414, 417, 431), or `internal_error` for its own 500. And a
    transfer coding it does not know is a malformed request like any other:
    400, where gunicorn would answer 501 (a 5xx says the server failed)."""
    from gunicorn import util
    from gunicorn.http.errors import InvalidHeader, UnsupportedTransferCoding

    util.write_error = _write_json_error
    handle_error = worker.handle_error

    def handle_client_error(req, client, addr, exc):
        if isinstance(exc, UnsupportedTransferCoding):
            exc = InvalidHeader("TRANSFER-ENCODING")
        handle_error(req, client, addr, exc)

    worker.handle_error = handle_client_error


def _write_json_error(sock, status_int, reason, mesg):
    """gunicorn.util.write_error, with the service's JSON error shape and,
    as every answer has, an X-Request-ID that a log line carries too (these
    requests never reach the application or the access log)."""
    import json
    import logging

    from gunicorn import util

    from services import errors

    kind = errors.BadRequest if status_int < 500 else errors.ServiceError
    message = f"{kind.message[:-1]}: {mesg[:200]}" if mesg else kind.message
    body = json.dumps({"code": kind.code, "error": kind.slug, "message": message}).encode()
    request_id = os.urandom(16).hex()
    logging.getLogger("wx.request").info(
        "gunicorn answered %s %s: %s",
        status_int,
        reason,
        message,
        extra={"request_id": request_id, "status": status_int},
    )
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        f"X-Request-ID: {request_id}\r\n"
        "\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def child_exit(server, worker):
    """In the master, once a worker has exited: forget its live metrics."""
    from infra import multiproc

    multiproc.worker_exited(worker.pid)


def on_exit(server):
    from infra import multiproc

    # reexec_pid is set when a new master (USR2) carries on with the directory.
    multiproc.cleanup(os.environ, handed_over=server.reexec_pid != 0)
