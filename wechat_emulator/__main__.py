"""python -m wechat_emulator: run the emulator in the foreground."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from types import FrameType

from .server import EmulatorServer
from .state import DEFAULT_APPID, DEFAULT_SECRET


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m wechat_emulator",
        description="Local emulator of the WeChat mini-program server APIs.",
    )
    parser.add_argument(
        "--host",
        default=env.get("EMULATOR_HOST", "127.0.0.1"),
        help="default: $EMULATOR_HOST or 127.0.0.1",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=env.get("EMULATOR_PORT", "5100"),
        help="default: $EMULATOR_PORT or 5100; 0 picks a free port",
    )
    parser.add_argument(
        "--appid",
        default=env.get("WECHAT_APPID", DEFAULT_APPID),
        help=f"default: $WECHAT_APPID or {DEFAULT_APPID}",
    )
    parser.add_argument(
        "--secret",
        default=env.get("WECHAT_SECRET", DEFAULT_SECRET),
        help="default: $WECHAT_SECRET or the built-in emulator secret",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser.parse_args(argv)


def usage(url: str, appid: str, secret: str) -> str:
    login = (
        f"curl -s -X POST {url}/__emulator__/login -H 'Content-Type: application/json' -d '{{}}'"
    )
    exchange = (
        f"curl -s '{url}/sns/jscode2session?appid={appid}&secret={secret}"
        "&js_code=CODE&grant_type=authorization_code'"
    )
    return "\n".join(
        [
            f"WeChat emulator listening on {url}",
            f"  app: {json.dumps({'appid': appid, 'secret': secret})}",
            "Get a login code (stands in for wx.login):",
            f"  {login}",
            "Exchange it like the real API:",
            f"  {exchange}",
            "Press Ctrl-C to stop.",
        ]
    )


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        server = EmulatorServer(
            args.host, args.port, {args.appid: args.secret}, verbose=args.verbose
        )
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    # Shells start background jobs with SIGINT ignored; make Ctrl-C/kill -INT work anyway.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    print(usage(server.url, args.appid, args.secret), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopping", flush=True)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
