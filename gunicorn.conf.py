"""gunicorn settings; Heroku-style platforms set PORT and WEB_CONCURRENCY."""

import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Logins wait on WeChat (up to the read timeout): threads keep a worker useful meanwhile.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 30
graceful_timeout = 20
keepalive = 5
# gunicorn 25+ opens a control socket at one fixed path per user; several
# instances on one host would fight over it, and platforms have no use for it.
control_socket_disable = True
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


def child_exit(server, worker):
    """In the master, once a worker has exited: forget its live metrics."""
    from infra import multiproc

    multiproc.worker_exited(worker.pid)


def on_exit(server):
    from infra import multiproc

    # reexec_pid is set when a new master (USR2) carries on with the directory.
    multiproc.cleanup(os.environ, handed_over=server.reexec_pid != 0)
