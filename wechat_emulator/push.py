"""Message push (消息推送): per-app configuration, building signed (and encrypted)
requests exactly as WeChat sends them, and the HTTP that sends them and fetches media.

Nothing here touches emulator state; `delivery.py` decides what to send and logs it.

Facts from the reference §11 and the official message-push page (its worked examples are
reproduced by the tests): query `signature, timestamp, nonce` (plus `openid,
encrypt_type=aes, msg_signature` once encryption is on), body in JSON or XML, AES-256-CBC
with IV = key[:16], PKCS#7 to 32 bytes. Guesses, marked [UNVERIFIED] where they occur:
the Content-Type and User-Agent of pushes, the XML shape of nested fields, `\\/` in JSON
bodies, and retries being re-signed with a fresh timestamp and nonce.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from . import crypto

MODES = ("plaintext", "compatible", "secure")
FORMATS = ("json", "xml")
# WeChat's old docs give plaintext + XML as the defaults of a new configuration.
DEFAULT_MODE = "plaintext"
DEFAULT_FORMAT = "xml"
# "微信服务器在五秒内收不到响应会断掉连接，并且重新发起请求，总共重试三次"
DEFAULT_TIMEOUT = 5.0
DEFAULT_RETRIES = 3
MAX_RETRIES = 10
MAX_TIMEOUT = 60.0
# [UNVERIFIED] headers: the docs do not say; these are what the emulator sends.
CONTENT_TYPES = {"json": "application/json", "xml": "text/xml"}
USER_AGENT = "Mozilla/4.0"
# Replies that stop retries: "回复空串或者success即可".
ACCEPTED_REPLIES = (b"", b"success")
MAX_LOGGED_REPLY = 64 * 1024
MAX_MEDIA_BYTES = 10 * 1024 * 1024  # "each file at most 10 MB"
MEDIA_FETCH_TIMEOUT = 10.0


class PushConfigError(ValueError):
    pass


@dataclass(frozen=True)
class PushConfig:
    url: str
    token: str
    encoding_aes_key: str | None = None
    mode: str = DEFAULT_MODE
    format: str = DEFAULT_FORMAT
    retries: int = DEFAULT_RETRIES
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PushConfigError("url must be an http:// or https:// URL")
        # The console's rule: 3 to 32 letters or digits.
        if not (3 <= len(self.token) <= 32 and self.token.isascii() and self.token.isalnum()):
            raise PushConfigError("token must be 3-32 letters or digits")
        if self.encoding_aes_key is not None:
            try:
                crypto.push_aes_key(self.encoding_aes_key)
            except ValueError as exc:
                raise PushConfigError(str(exc)) from exc
        if self.mode not in MODES:
            raise PushConfigError(f"mode must be one of {MODES}")
        if self.mode != "plaintext" and self.encoding_aes_key is None:
            raise PushConfigError(f"{self.mode} mode needs an encoding_aes_key")
        if self.format not in FORMATS:
            raise PushConfigError(f"format must be one of {FORMATS}")
        if not 0 <= self.retries <= MAX_RETRIES:
            raise PushConfigError(f"retries must be 0..{MAX_RETRIES}")
        if not 0 < self.timeout <= MAX_TIMEOUT:
            raise PushConfigError(f"timeout must be in (0, {MAX_TIMEOUT}]")

    def public(self) -> dict[str, Any]:
        return asdict(self)


# ----- message bodies ------------------------------------------------------------------------


def json_body(message: Mapping[str, Any]) -> bytes:
    """Compact JSON with "/" escaped as "\\/", like WeChat's API replies. [UNVERIFIED for
    pushes; any JSON parser reads both forms.]"""
    return crypto.compact_json(message).replace("/", "\\/").encode("utf-8")


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _xml_value(name: str, value: Any) -> str:
    """Strings in CDATA, numbers bare; an object nests its fields and a list repeats the
    element once per item (so `detail` becomes repeated <detail> elements). [UNVERIFIED]"""
    if isinstance(value, list):
        return "".join(_xml_value(name, item) for item in value)
    if isinstance(value, Mapping):
        inner = "".join(_xml_value(k, v) for k, v in value.items())
        return f"<{name}>{inner}</{name}>"
    if isinstance(value, bool):
        text = "1" if value else "0"
    elif isinstance(value, int | float):
        text = str(value)
    else:
        return f"<{name}>{_cdata(str(value))}</{name}>"
    return f"<{name}>{text}</{name}>"


def xml_body(message: Mapping[str, Any]) -> bytes:
    inner = "".join(_xml_value(k, v) for k, v in message.items())
    return f"<xml>{inner}</xml>".encode()


def encode(message: Mapping[str, Any], fmt: str) -> bytes:
    return json_body(message) if fmt == "json" else xml_body(message)


@dataclass
class Outgoing:
    """One HTTP request to the service, exactly as sent (and as replayed)."""

    method: str
    url: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def full_url(self) -> str:
        if not self.query:
            return self.url
        separator = "&" if urlsplit(self.url).query else "?"
        return self.url + separator + urlencode(self.query)

    def public(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "url": self.full_url,
            "query": dict(self.query),
            "headers": dict(self.headers),
            "body": self.body.decode("utf-8", errors="replace"),
        }


def signed_post(
    config: PushConfig,
    appid: str,
    to_user: str,
    message: Mapping[str, Any],
    openid: str,
    timestamp: int,
    nonce: str | None = None,
    random_prefix: bytes | None = None,
) -> Outgoing:
    """The POST WeChat sends for `message` under `config`.

    plaintext:  ?signature&timestamp&nonce, body = the message
    secure:     adds &openid&encrypt_type=aes&msg_signature, body = {ToUserName, Encrypt}
    compatible: the secure query, body = the message's fields plus Encrypt
    """
    nonce = nonce or crypto.new_push_nonce()
    ts = str(timestamp)
    query = {
        "signature": crypto.push_signature(config.token, ts, nonce),
        "timestamp": ts,
        "nonce": nonce,
    }
    plain = encode(message, config.format)
    if config.mode == "plaintext":
        body = plain
    else:
        assert config.encoding_aes_key is not None
        encrypted = crypto.encrypt_push_message(
            plain, config.encoding_aes_key, appid, random_prefix
        )
        query.update(
            openid=openid,
            encrypt_type="aes",
            msg_signature=crypto.push_signature(config.token, ts, nonce, encrypted),
        )
        if config.mode == "secure":
            envelope: dict[str, Any] = {"ToUserName": to_user, "Encrypt": encrypted}
        else:
            envelope = {**message, "Encrypt": encrypted}
        body = encode(envelope, config.format)
    headers = {
        "Content-Type": CONTENT_TYPES[config.format],
        "User-Agent": USER_AGENT,
    }
    return Outgoing("POST", config.url, query, headers, body)


def verification_get(config: PushConfig, timestamp: int, echostr: str) -> Outgoing:
    """The URL-verification handshake: GET ?signature&echostr&timestamp&nonce (the docs'
    order); the server must answer echostr unchanged."""
    nonce = crypto.new_push_nonce()
    ts = str(timestamp)
    query = {
        "signature": crypto.push_signature(config.token, ts, nonce),
        "echostr": echostr,
        "timestamp": ts,
        "nonce": nonce,
    }
    return Outgoing("GET", config.url, query, {"User-Agent": USER_AGENT}, b"")


# ----- HTTP ------------------------------------------------------------------------------------


@dataclass
class Answer:
    """What the service answered (or why it did not)."""

    status: int | None = None
    body: bytes = b""
    error: str | None = None
    elapsed: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.status == 200 and self.body.strip() in ACCEPTED_REPLIES

    def public(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "body": self.body[:MAX_LOGGED_REPLY].decode("utf-8", errors="replace"),
            "error": self.error,
            "elapsed": round(self.elapsed, 4),
        }


def send(request: Outgoing, timeout: float) -> Answer:
    """Send one request on a fresh connection, without following redirects. Connecting and
    answering together must take at most `timeout` seconds, as WeChat's 5 s."""
    parts = urlsplit(request.full_url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    https = parts.scheme == "https"
    conn_class = http.client.HTTPSConnection if https else http.client.HTTPConnection
    started = time.monotonic()
    conn = conn_class(parts.hostname or "", parts.port, timeout=timeout)
    try:
        headers = dict(request.headers)
        if request.method == "POST":
            headers["Content-Length"] = str(len(request.body))
        conn.request(request.method, target, body=request.body or None, headers=headers)
        if conn.sock is not None:
            conn.sock.settimeout(max(0.001, timeout - (time.monotonic() - started)))
        response = conn.getresponse()
        body = response.read(MAX_LOGGED_REPLY + 1)
        return Answer(
            status=response.status,
            body=body,
            elapsed=time.monotonic() - started,
            headers={k: v for k, v in response.getheaders()},
        )
    except TimeoutError:
        return Answer(error="timed out", elapsed=time.monotonic() - started)
    except (OSError, http.client.HTTPException) as exc:
        return Answer(error=f"{type(exc).__name__}: {exc}", elapsed=time.monotonic() - started)
    finally:
        conn.close()


@dataclass
class Fetched:
    data: bytes | None
    error: str | None = None


def fetch_media(url: str, timeout: float = MEDIA_FETCH_TIMEOUT) -> Fetched:
    """Download media_url as WeChat's servers would. Anything but a 200 with at most 10 MB
    is a failed download, and so is a URL that is not http(s)."""
    if urlsplit(url).scheme not in ("http", "https"):
        return Fetched(None, "not an http(s) URL")
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers={"User-Agent": USER_AGENT}), timeout=timeout
        ) as response:
            if response.status != 200:
                return Fetched(None, f"HTTP {response.status}")
            data = response.read(MAX_MEDIA_BYTES + 1)
    except urllib.error.HTTPError as exc:
        return Fetched(None, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        return Fetched(None, f"{type(exc).__name__}: {exc}")
    if len(data) > MAX_MEDIA_BYTES:
        return Fetched(None, "larger than 10 MB")
    return Fetched(data)
