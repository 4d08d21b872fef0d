"""Every setting the service reads, from the environment, in one place.

Each variable is documented in README.md ("Configuration"). `load()` turns the
environment into a plain dict that `create_app()` puts into `app.config`;
`validate()` refuses configurations that cannot work in production.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from limits import parse_many

from infra.redis import parse as parse_redis_url
from wechat_emulator import DEFAULT_APPID, DEFAULT_SECRET

ROOT = Path(__file__).resolve().parent
DEFAULT_INSTANCE = ROOT / "instance"

# Without WECHAT_APPID the service runs in development mode against the
# bundled WeChat emulator (python -m wechat_emulator) and its default app
# (DEFAULT_APPID, DEFAULT_SECRET).
DEV_API_BASE = "http://127.0.0.1:5100"
# Read by gunicorn.conf.py rather than load().
GUNICORN_VARIABLES = (
    "PORT",
    "HOST",
    "WEB_CONCURRENCY",
    "GUNICORN_WORKER_CLASS",
    "GUNICORN_WORKER_CONNECTIONS",
    "GUNICORN_THREADS",
)
DEV_SECRET_KEY = "dev-only-secret-key-do-not-use-in-production"
# The push Token `make run` configures in the emulator; real ones come from
# the mini program's console (开发管理 → 消息推送).
DEV_PUSH_TOKEN = "devpushtoken"
REVIEW_POLICIES = ("reject", "accept")
LOG_FORMATS = ("text", "json")
APP_KINDS = ("miniprogram", "official_account")
SAMESITE = ("Lax", "Strict", "None")


@dataclass(frozen=True)
class WeChatApp:
    """One mini program or official account the deployment serves."""

    appid: str
    secret: str = field(repr=False)
    kind: str = "miniprogram"
    # The app's message push (its own console has its own Token and key).
    push_token: str = field(default="", repr=False)
    push_aes_key: str = field(default="", repr=False)
    # SameSite of the session cookie for this app's clients: an official
    # account's pages are real browser pages (README "Official-account web login").
    cookie_samesite: str = "Lax"


T = TypeVar("T", int, float)


class ConfigError(RuntimeError):
    """The environment describes a service that cannot start."""


def _number(environ: Mapping[str, str], name: str, default: T, kind: Callable[[str], T]) -> T:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ConfigError(f"{name} must be {what}, got {raw!r}") from None


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    return _number(environ, name, default, int)


def _float(environ: Mapping[str, str], name: str, default: float) -> float:
    return _number(environ, name, default, float)


def _flag(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def instance_path(environ: Mapping[str, str]) -> Path:
    """Where the embedded defaults keep their files (SQLite, Redis's dump)."""
    return Path(environ.get("INSTANCE_PATH", "").strip() or DEFAULT_INSTANCE).resolve()


def database_url(raw: str | None, instance: Path) -> str:
    """Normalise DATABASE_URL; Heroku-style platforms still hand out postgres://."""
    if not raw:
        return f"sqlite:///{instance / 'app.db'}"
    scheme, _, rest = raw.partition("://")
    if scheme in {"postgres", "postgresql"}:
        return f"postgresql+psycopg://{rest}"
    if scheme == "mysql":
        return f"mysql+pymysql://{rest}"
    return raw


def load(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    env = os.environ if environ is None else environ
    appid = env.get("WECHAT_APPID", "").strip()
    apps = env.get("WECHAT_APPS", "").strip()
    dev_mode = not appid and not apps
    ttl = _int(env, "SESSION_TTL", 7 * 24 * 3600)
    instance = instance_path(env)
    return {
        "DEV_MODE": dev_mode,
        "INSTANCE_PATH": str(instance),
        # Several apps as JSON (or a path to a JSON file), or the single-app
        # settings below; see wechat_apps().
        "WECHAT_APPS": apps,
        "WECHAT_APPID": appid,
        "WECHAT_SECRET": env.get("WECHAT_SECRET", ""),
        "WECHAT_API_BASE": (
            env.get("WECHAT_API_BASE", "").strip()
            or (DEV_API_BASE if dev_mode else "https://api.weixin.qq.com")
        ).rstrip("/"),
        "WECHAT_CONNECT_TIMEOUT": _float(env, "WECHAT_CONNECT_TIMEOUT", 3.05),
        "WECHAT_READ_TIMEOUT": _float(env, "WECHAT_READ_TIMEOUT", 5.0),
        "WECHAT_RETRY_BACKOFF": _float(env, "WECHAT_RETRY_BACKOFF", 0.2),
        # encryptedData carries the time WeChat made it; 0 turns the check off.
        "WECHAT_WATERMARK_MAX_AGE": _int(env, "WECHAT_WATERMARK_MAX_AGE", 600),
        "SECRET_KEY": env.get("SECRET_KEY", "") or (DEV_SECRET_KEY if dev_mode else ""),
        "REDIS_URL": env.get("REDIS_URL", "").strip() or None,
        "REDIS_KEY_PREFIX": env.get("REDIS_KEY_PREFIX", "wx:"),
        # Seconds to connect to Redis and to wait for each reply; then 503.
        "REDIS_TIMEOUT": _float(env, "REDIS_TIMEOUT", 0.5),
        # After Redis failed to answer, calls fail at once for this many seconds.
        "REDIS_FAIL_FAST": _float(env, "REDIS_FAIL_FAST", 1.0),
        "DATABASE_URL": database_url(env.get("DATABASE_URL", "").strip() or None, instance),
        "SESSION_TTL": ttl,
        "SESSION_RENEW_INTERVAL": _int(env, "SESSION_RENEW_INTERVAL", max(1, min(3600, ttl // 10))),
        "SESSION_COOKIE_NAME": env.get("SESSION_COOKIE_NAME", "").strip() or "sid",
        "SESSION_COOKIE_SECURE": _flag(env, "SESSION_COOKIE_SECURE"),
        "SESSIONS_PER_USER": _int(env, "SESSIONS_PER_USER", 10),
        "SESSION_KEY_HISTORY": _int(env, "SESSION_KEY_HISTORY", 3),
        "LOGIN_DEDUP_WINDOW": _int(env, "LOGIN_DEDUP_WINDOW", 60),
        # A retried login code returns its first session for this long (the code's life).
        "LOGIN_CODE_REPLAY_TTL": _int(env, "LOGIN_CODE_REPLAY_TTL", 300),
        # Per client address and per WeChat user; the limits library's notation.
        "LOGIN_RATE_LIMIT": env.get("LOGIN_RATE_LIMIT", "").strip() or "120/minute",
        "LOGIN_RATE_LIMIT_OPENID": (env.get("LOGIN_RATE_LIMIT_OPENID", "").strip() or "60/minute"),
        # Calls to WeChat one account may cause (checks, phone codes, content security).
        "WECHAT_CALL_RATE_LIMIT": (
            env.get("WECHAT_CALL_RATE_LIMIT", "").strip() or "20/minute;200/day"
        ),
        # Seconds a checksession answer is reused for the same session_key.
        "CHECK_SESSION_CACHE": _int(env, "CHECK_SESSION_CACHE", 60),
        # How many proxies in front of the service append to X-Forwarded-For.
        "TRUSTED_PROXIES": _int(env, "TRUSTED_PROXIES", 0),
        # WeChat's message push: the Token and EncodingAESKey of the console.
        "WECHAT_PUSH_TOKEN": env.get("WECHAT_PUSH_TOKEN", "").strip(),
        "WECHAT_PUSH_AES_KEY": env.get("WECHAT_PUSH_AES_KEY", "").strip(),
        "PUSH_MAX_AGE": _int(env, "PUSH_MAX_AGE", 300),
        # What a "review" verdict of WeChat's content security means here.
        "PROFILE_REVIEW_POLICY": env.get("PROFILE_REVIEW_POLICY", "").strip().lower() or "reject",
        "AVATAR_BASE_URL": env.get("AVATAR_BASE_URL", "").strip().rstrip("/"),
        "AVATAR_MAX_BYTES": _int(env, "AVATAR_MAX_BYTES", 5 * 1024 * 1024),
        "AVATAR_MAX_PIXELS": _int(env, "AVATAR_MAX_PIXELS", 25_000_000),
        "AVATAR_SIZE": _int(env, "AVATAR_SIZE", 640),
        # WeChat promises a media verdict within 30 minutes.
        "AVATAR_REVIEW_TIMEOUT": _int(env, "AVATAR_REVIEW_TIMEOUT", 3600),
        "LOG_LEVEL": env.get("LOG_LEVEL", "").strip().upper() or "INFO",
        # text (the default) or json: one JSON object per line (infra/logs.py).
        "LOG_FORMAT": env.get("LOG_FORMAT", "").strip().lower() or "text",
        # The Bearer token GET /metrics requires; without one, /metrics is a 404.
        "METRICS_TOKEN": env.get("METRICS_TOKEN", "").strip(),
        # prometheus_client's multiprocess directory, read by prometheus_client
        # itself; under gunicorn the master makes (or empties) it at start.
        "PROMETHEUS_MULTIPROC_DIR": env.get("PROMETHEUS_MULTIPROC_DIR", "").strip(),
    }


def variables() -> set[str]:
    """Every environment variable the service reads."""
    asked: set[str] = set()

    class Recording(dict):
        def get(self, key: str, default: Any = None) -> Any:
            asked.add(key)
            return default

    load(Recording())
    return asked | set(GUNICORN_VARIABLES)


def validate_connections(config: Mapping[str, Any]) -> None:
    """create_app() needs a Redis to talk to; the entry points (wsgi.py,
    gunicorn's master, make run) start the embedded one when none is set."""
    if not config.get("REDIS_URL"):
        raise ConfigError(
            "REDIS_URL is not set: point it at a Redis, or start the service through "
            "wsgi.py or `make run`, which start an embedded one"
        )


def wechat_apps(config: Mapping[str, Any]) -> tuple[WeChatApp, ...]:
    """The apps this deployment serves, the default (the one a request without
    X-WX-AppId is for) first: WECHAT_APPS, else the single app of
    WECHAT_APPID, else (development) the emulator's app."""
    if config.get("WECHAT_APPS"):
        if config.get("WECHAT_APPID"):
            raise ConfigError("set WECHAT_APPS or WECHAT_APPID, not both")
        return _parse_apps(config["WECHAT_APPS"])
    if config.get("WECHAT_APPID"):
        app = WeChatApp(
            appid=config["WECHAT_APPID"],
            secret=config.get("WECHAT_SECRET", ""),
            push_token=config.get("WECHAT_PUSH_TOKEN", ""),
            push_aes_key=config.get("WECHAT_PUSH_AES_KEY", ""),
        )
    else:
        app = WeChatApp(
            appid=DEFAULT_APPID,
            secret=DEFAULT_SECRET,
            push_token=config.get("WECHAT_PUSH_TOKEN") or DEV_PUSH_TOKEN,
            push_aes_key=config.get("WECHAT_PUSH_AES_KEY", ""),
        )
    _check_app(app, "the app")
    return (app,)


def _parse_apps(raw: str) -> tuple[WeChatApp, ...]:
    if not raw.lstrip().startswith("["):
        try:
            raw = Path(raw).read_text()
        except OSError as exc:
            raise ConfigError(f"WECHAT_APPS is neither JSON nor a readable file: {exc}") from None
    try:
        entries = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"WECHAT_APPS is not valid JSON: {exc}") from None
    if not isinstance(entries, list) or not entries:
        raise ConfigError("WECHAT_APPS must be a non-empty JSON list of apps")
    apps = tuple(_app(entry, index) for index, entry in enumerate(entries))
    appids = [app.appid for app in apps]
    if len(set(appids)) != len(appids):
        raise ConfigError("WECHAT_APPS names an appid twice")
    return apps


def _app(entry: Any, index: int) -> WeChatApp:
    where = f"WECHAT_APPS[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(f'{where} must be an object like {{"appid": ..., "secret": ...}}')
    unknown = sorted(set(entry) - set(WeChatApp.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"{where} has unknown setting(s): {', '.join(unknown)}")
    if not all(isinstance(value, str) for value in entry.values()):
        raise ConfigError(f"{where}: every setting is a string")
    if not entry.get("appid") or not entry.get("secret"):
        raise ConfigError(f"{where} needs an appid and a secret")
    app = WeChatApp(**entry)
    _check_app(app, f"{where} ({app.appid})")
    return app


def _check_app(app: WeChatApp, where: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", app.appid):
        raise ConfigError(f"{where}: appid must be up to 32 letters, digits, - or _")
    if app.kind not in APP_KINDS:
        raise ConfigError(f"{where}: kind must be one of {', '.join(APP_KINDS)}")
    if app.cookie_samesite not in SAMESITE:
        raise ConfigError(f"{where}: cookie_samesite must be one of {', '.join(SAMESITE)}")
    token, aes_key = app.push_token, app.push_aes_key
    if token and not re.fullmatch(r"[A-Za-z0-9]{3,32}", token):
        raise ConfigError(f"{where}: the push Token must be 3 to 32 letters or digits")
    if aes_key and not re.fullmatch(r"[A-Za-z0-9]{43}", aes_key):
        raise ConfigError(f"{where}: the push EncodingAESKey must have 43 characters")
    if aes_key and not token:
        raise ConfigError(f"{where}: a push EncodingAESKey needs a push Token as well")


def validate_profile(config: Mapping[str, Any]) -> None:
    if config["PROFILE_REVIEW_POLICY"] not in REVIEW_POLICIES:
        raise ConfigError(f"PROFILE_REVIEW_POLICY must be one of {', '.join(REVIEW_POLICIES)}")
    base = config["AVATAR_BASE_URL"]
    if base and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", base):
        raise ConfigError("AVATAR_BASE_URL must be an http(s) URL")
    for name in ("AVATAR_MAX_BYTES", "AVATAR_MAX_PIXELS", "AVATAR_SIZE", "AVATAR_REVIEW_TIMEOUT"):
        if config[name] < 1:
            raise ConfigError(f"{name} must be a positive number")
    if not 0 < config["REDIS_TIMEOUT"] <= 30 or config["REDIS_FAIL_FAST"] < 0:
        raise ConfigError("REDIS_TIMEOUT must be between 0 and 30 s; REDIS_FAIL_FAST >= 0")
    try:
        redis_url = config.get("REDIS_URL")
        if redis_url:
            parse_redis_url(redis_url)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if config["PUSH_MAX_AGE"] < 1:
        raise ConfigError("PUSH_MAX_AGE must be at least 1 second")


def validate(config: Mapping[str, Any]) -> None:
    """Stop start-up with a clear message when production settings are missing."""
    if config.get("WECHAT_APPID") and not config.get("WECHAT_APPS"):
        missing = [name for name in ("WECHAT_SECRET", "SECRET_KEY") if not config.get(name)]
        if missing:
            raise ConfigError(
                f"WECHAT_APPID is set, so the service runs for real and needs "
                f"{' and '.join(missing)}; set {'them' if len(missing) > 1 else 'it'} "
                f"in the environment"
            )
    wechat_apps(config)
    if config.get("WECHAT_APPS") and not config.get("SECRET_KEY"):
        raise ConfigError("WECHAT_APPS is set, so the service runs for real and needs SECRET_KEY")
    if config["SESSION_TTL"] <= 0:
        raise ConfigError("SESSION_TTL must be a positive number of seconds")
    if not 0 < config["SESSION_RENEW_INTERVAL"] < config["SESSION_TTL"]:
        raise ConfigError("SESSION_RENEW_INTERVAL must be between 0 and SESSION_TTL")
    for name in ("SESSIONS_PER_USER", "SESSION_KEY_HISTORY"):
        if config[name] < 1:
            raise ConfigError(f"{name} must be at least 1")
    if config["WECHAT_WATERMARK_MAX_AGE"] < 0:
        raise ConfigError("WECHAT_WATERMARK_MAX_AGE cannot be negative (0 turns it off)")
    for name in ("LOGIN_DEDUP_WINDOW", "TRUSTED_PROXIES", "CHECK_SESSION_CACHE"):
        if config[name] < 0:
            raise ConfigError(f"{name} cannot be negative")
    validate_profile(config)
    if config["LOG_FORMAT"] not in LOG_FORMATS:
        raise ConfigError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}")
    token = config["METRICS_TOKEN"]
    if token and not re.fullmatch(r"[\x21-\x7e]{16,256}", token):
        raise ConfigError("METRICS_TOKEN must be 16 to 256 printable characters, no spaces")
    if config["LOGIN_CODE_REPLAY_TTL"] < 1:
        raise ConfigError("LOGIN_CODE_REPLAY_TTL must be at least 1 second")
    for name in ("LOGIN_RATE_LIMIT", "LOGIN_RATE_LIMIT_OPENID", "WECHAT_CALL_RATE_LIMIT"):
        try:
            parse_many(config[name])
        except ValueError:
            raise ConfigError(f"{name} is not a rate limit like '120/minute'") from None
