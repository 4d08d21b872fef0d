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
accesslog = "-"
# The request line never carries a secret: tokens travel in headers only.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms pid=%(p)s'


def on_starting(server):
    """Runs once in the master, before any worker: refuse a broken
    configuration with a clear message, and set up the embedded defaults
    (one Redis for every worker, the SQLite schema) when nothing is configured.

    Imports live here: every module-level name in this file is read as a
    gunicorn setting, and `config` is one."""
    import config
    from app import prepare_embedded

    try:
        config.validate(config.load())
    except config.ConfigError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    prepare_embedded(os.environ)
