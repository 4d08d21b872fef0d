"""HTTP layer: WeChat-side endpoints, the /__emulator__/ control API and fault injection."""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import crypto
from .errors import ControlError
from .state import (
    ENDPOINTS,
    PROFILE_FIELDS,
    EmulatorState,
    Fault,
    WeChatError,
)

# RevokeInfo codes of user_authorization_revoke (reference §15).
REVOKE_CODES = (1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 14, 15, 16, 18, 19, 20)

CONTROL_PREFIX = "/__emulator__/"
JSON_TYPE = "application/json"
MAX_BODY = 4 * 1024 * 1024


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    raw_body: bytes

    def json_body(self) -> Any:
        """Parsed JSON, or None when the body is empty or not JSON."""
        if not self.raw_body.strip():
            return None
        try:
            return json.loads(self.raw_body)
        except (ValueError, UnicodeDecodeError):
            return None


def wechat_json(payload: Any) -> bytes:
    """WeChat escapes "/" as "\\/"; "/" only ever occurs inside JSON strings, so a plain
    replacement after serializing yields the same (still valid) JSON."""
    return crypto.compact_json(payload).replace("/", "\\/").encode("utf-8")


def error_body(error: WeChatError) -> dict[str, Any]:
    # Live errmsgs end with a request id; a custom errmsg from a fault is sent verbatim.
    errmsg = f"{error.errmsg}, rid: {crypto.new_rid()}" if error.add_rid else error.errmsg
    return {"errcode": error.errcode, "errmsg": errmsg}


# ----- WeChat-side endpoints ---------------------------------------------------------------

WeChatHandler = Callable[[EmulatorState, Request], dict[str, Any]]


def _object_body(request: Request) -> Mapping[str, Any] | None:
    body = request.json_body()
    return body if isinstance(body, dict) else None


def _jscode2session(state: EmulatorState, request: Request) -> dict[str, Any]:
    q = request.query
    return state.jscode2session(
        q.get("appid"), q.get("secret"), q.get("js_code"), q.get("grant_type")
    )


def _token(state: EmulatorState, request: Request) -> dict[str, Any]:
    q = request.query
    return state.client_token(q.get("appid"), q.get("secret"), q.get("grant_type"))


def _stable_token(state: EmulatorState, request: Request) -> dict[str, Any]:
    return state.stable_token(_object_body(request))


def _getuserphonenumber(state: EmulatorState, request: Request) -> dict[str, Any]:
    return state.user_phone_number(request.query.get("access_token"), _object_body(request))


def _signed_args(request: Request) -> tuple[str | None, ...]:
    q = request.query
    return q.get("access_token"), q.get("openid"), q.get("signature"), q.get("sig_method")


def _checksession(state: EmulatorState, request: Request) -> dict[str, Any]:
    return state.check_session(*_signed_args(request))


def _resetusersessionkey(state: EmulatorState, request: Request) -> dict[str, Any]:
    return state.reset_session_key(*_signed_args(request))


def _msg_sec_check(state: EmulatorState, request: Request) -> dict[str, Any]:
    # Token first, then the method: these endpoints check in WeChat's order themselves.
    return state.msg_sec_check(request.query.get("access_token"), request.method, request.raw_body)


def _media_check_async(state: EmulatorState, request: Request) -> dict[str, Any]:
    return state.media_check_async(
        request.query.get("access_token"), request.method, request.raw_body
    )


def _oauth2_access_token(state: EmulatorState, request: Request) -> dict[str, Any]:
    q = request.query
    return state.oauth_access_token(
        q.get("appid"), q.get("secret"), q.get("code"), q.get("grant_type")
    )


def _sns_userinfo(state: EmulatorState, request: Request) -> dict[str, Any]:
    return state.sns_userinfo(request.query.get("access_token"), request.query.get("openid"))


@dataclass(frozen=True)
class Route:
    endpoint: str
    handler: WeChatHandler
    post_only: bool = False


WECHAT_ROUTES: dict[str, Route] = {
    "/sns/jscode2session": Route("jscode2session", _jscode2session),
    "/cgi-bin/token": Route("token", _token),
    "/cgi-bin/stable_token": Route("stable_token", _stable_token, post_only=True),
    "/wxa/business/getuserphonenumber": Route(
        "getuserphonenumber", _getuserphonenumber, post_only=True
    ),
    "/wxa/checksession": Route("checksession", _checksession),
    "/wxa/resetusersessionkey": Route("resetusersessionkey", _resetusersessionkey),
    "/wxa/msg_sec_check": Route("msg_sec_check", _msg_sec_check),
    "/wxa/media_check_async": Route("media_check_async", _media_check_async),
    "/sns/oauth2/access_token": Route("oauth2_access_token", _oauth2_access_token),
    "/sns/userinfo": Route("sns_userinfo", _sns_userinfo),
}
assert {r.endpoint for r in WECHAT_ROUTES.values()} == set(ENDPOINTS)


# ----- control API -------------------------------------------------------------------------


class Fields:
    """Typed access to a control request's JSON object; rejects unknown keys."""

    def __init__(self, body: Any, allowed: tuple[str, ...]) -> None:
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise ControlError("expected a JSON object")
        unknown = sorted(set(body) - set(allowed))
        if unknown:
            raise ControlError(f"unknown field(s) {unknown}; allowed: {list(allowed)}")
        self._body: dict[str, Any] = body

    def has(self, key: str) -> bool:
        return key in self._body

    def _get(self, key: str, types: tuple[type, ...], what: str, required: bool) -> Any:
        value = self._body.get(key)
        if value is None:
            if required:
                raise ControlError(f"{key!r} is required")
            return None
        # bool is a subclass of int; never accept it where a number is expected.
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            raise ControlError(f"{key!r} must be {what}")
        return value

    def text(self, key: str, required: bool = False) -> str | None:
        return self._get(key, (str,), "a string", required)

    def flag(self, key: str) -> bool | None:
        return self._get(key, (bool,), "true or false", False)

    def number(self, key: str) -> float | None:
        value = self._get(key, (int, float), "a number", False)
        return None if value is None else float(value)

    def integer(self, key: str) -> int | None:
        return self._get(key, (int,), "an integer", False)

    def obj(self, key: str) -> dict[str, Any] | None:
        return self._get(key, (dict,), "an object", False)

    def raw(self, key: str) -> Any:
        return self._body.get(key)

    def given(self, *keys: str) -> dict[str, Any]:
        """The given keys whose value is not null, as they are."""
        return {k: self._body[k] for k in keys if self._body.get(k) is not None}


def _ctl_login(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    f = Fields(body, ("appid", "openid", "unionid", "blocked", "person"))
    return state.login(
        f.text("appid"), f.text("openid"), f.text("unionid"), f.flag("blocked"), f.text("person")
    )


def _ctl_encrypt(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    f = Fields(
        body,
        ("appid", "openid", "data", "raw", "watermark", "add_watermark", "session_key"),
    )
    watermark = Fields(f.obj("watermark"), ("appid", "timestamp"))
    wm = {"appid": watermark.text("appid"), "timestamp": watermark.integer("timestamp")}
    add_watermark = f.flag("add_watermark")
    return state.open_data(
        f.text("openid"),
        data=f.obj("data"),
        raw=f.text("raw"),
        watermark={k: v for k, v in wm.items() if v is not None},
        add_watermark=True if add_watermark is None else add_watermark,
        appid=f.text("appid"),
        session_key=f.text("session_key"),
    )


def _ctl_phonecode(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    f = Fields(body, ("appid", "openid", "phoneNumber", "purePhoneNumber", "countryCode"))
    openid = f.text("openid", required=True)
    assert openid is not None
    extra = {
        "phone_number": f.text("phoneNumber"),
        "pure_phone_number": f.text("purePhoneNumber"),
        "country_code": f.text("countryCode"),
    }
    code = state.issue_phone_code(
        openid, f.text("appid"), **{k: v for k, v in extra.items() if v is not None}
    )
    return {"code": code}


def parse_fault(item: Any) -> Fault:
    f = Fields(
        item,
        ("endpoint", "errcode", "errmsg", "delay", "drop", "times", "content_type", "body"),
    )
    endpoint = f.text("endpoint", required=True)
    assert endpoint is not None
    times = f.integer("times")
    return Fault(
        endpoint=endpoint,
        errcode=f.integer("errcode"),
        errmsg=f.text("errmsg"),
        delay=f.number("delay") or 0.0,
        drop=bool(f.flag("drop")),
        times=1 if times is None else times,
        content_type=f.text("content_type"),
        body=f.text("body"),
    )


def _ctl_add_faults(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    items = body if isinstance(body, list) else [body]
    return {"queued": state.add_faults([parse_fault(item) for item in items])}


def _ctl_list_faults(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    return {"faults": state.pending_faults()}


def _ctl_clear_faults(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    state.clear_faults()
    return {"faults": []}


def _ctl_calls(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    return {"calls": state.calls(query.get("endpoint") or None)}


def _ctl_clear_calls(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    state.clear_calls()
    return {"calls": []}


def _ctl_config(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    return state.config()


def _ctl_configure(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    f = Fields(
        body, ("rotate", "rotate_min_interval", "code_ttl", "success_errcode", "content_type")
    )
    updates = {
        "rotate": f.text("rotate"),
        "rotate_min_interval": f.number("rotate_min_interval"),
        "code_ttl": f.number("code_ttl"),
        "success_errcode": f.flag("success_errcode"),
        "content_type": f.text("content_type"),
    }
    return state.configure(**{k: v for k, v in updates.items() if v is not None})


def _ctl_clock(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    advance = Fields(body, ("advance",)).number("advance") or 0.0
    return {"now": state.advance_clock(advance)}


def _ctl_now(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    return {"now": state.now()}


def _ctl_add_app(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    f = Fields(body, ("appid", "secret", "kind", "open_platform", "username"))
    appid, secret = f.text("appid", required=True), f.text("secret", required=True)
    assert appid is not None and secret is not None
    return state.add_app(appid, secret, f.text("kind"), f.text("open_platform"), f.text("username"))


def _ctl_apps(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    return {"apps": state.apps()}


def _ctl_profile(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    f = Fields(body, ("person", "appid", "openid", *PROFILE_FIELDS))
    return state.set_profile(
        f.given(*PROFILE_FIELDS), f.text("person"), f.text("appid"), f.text("openid")
    )


def _ctl_oauth_authorize(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    f = Fields(body, ("appid", "person", "openid", "scope", "snapshot"))
    scope = f.text("scope", required=True)
    assert scope is not None
    return state.oauth_authorize(
        scope, f.text("appid"), f.text("person"), f.text("openid"), bool(f.flag("snapshot"))
    )


def _ctl_rules(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    return state.rules()


def _ctl_set_rules(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    f = Fields(body, ("text", "media"))
    return state.set_rules(f.obj("text"), f.obj("media"))


def _ctl_clear_rules(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    return state.clear_rules()


def _ctl_push_config(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    return {"push": state.push_config(query.get("appid") or None)}


def _ctl_set_push_config(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    keys = ("url", "token", "encoding_aes_key", "mode", "format", "retries", "timeout")
    f = Fields(body, ("appid", *keys))
    f.text("url", required=True)
    f.text("token", required=True)
    for key in ("encoding_aes_key", "mode", "format"):
        f.text(key)
    f.integer("retries")
    timeout = f.number("timeout")
    fields = f.given(*keys)
    if timeout is not None:
        fields["timeout"] = timeout
    return {"push": state.configure_push(f.text("appid"), **fields)}


def _ctl_remove_push_config(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    state.remove_push_config(query.get("appid") or None)
    return {"push": None}


def _ctl_push_verify(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    f = Fields(body, ("appid",))
    return state.deliveries.verify(f.text("appid"))


def _revoke_info(value: Any) -> str | None:
    """A string is sent as it is; a list of codes is joined with "," [UNVERIFIED: the docs
    only show single values]."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        codes = []
        for item in value:
            code = _small_code(item)
            if code not in REVOKE_CODES:
                raise ControlError(f"revoke_info codes must be among {list(REVOKE_CODES)}")
            codes.append(str(code))
        return ",".join(codes)
    raise ControlError("revoke_info must be a string or a non-empty list of codes")


def _small_code(item: Any) -> int | None:
    if isinstance(item, int) and not isinstance(item, bool):
        return item
    if isinstance(item, str) and item.isdigit():
        return int(item)
    return None


def _ctl_user_event(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    f = Fields(body, ("appid", "person", "openid", "event", "revoke_info", "create_time"))
    event = f.text("event", required=True)
    assert event is not None
    appid, message = state.user_event(
        event,
        f.text("appid"),
        f.text("person"),
        f.text("openid"),
        _revoke_info(f.raw("revoke_info")),
        f.integer("create_time"),
    )
    return state.deliveries.deliver(appid, message)


def _ctl_pushes(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    return {
        "pushes": state.pushes(
            query.get("appid") or None, query.get("event") or None, query.get("kind") or None
        )
    }


def _ctl_clear_pushes(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    state.clear_pushes()
    return {"pushes": []}


def _ctl_replay(push_id: int) -> ControlHandler:
    def handler(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
        attempt = Fields(body, ("attempt",)).integer("attempt")
        return state.deliveries.replay(push_id, attempt or 0)

    return handler


def _ctl_redeliver(push_id: int) -> ControlHandler:
    def handler(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
        Fields(body, ())
        return state.deliveries.redeliver(push_id)

    return handler


def _ctl_media_checks(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    return state.media_checks()


def _ctl_media_settings(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    f = Fields(body, ("delay", "hold"))
    return {"settings": state.media_settings(f.number("delay"), f.flag("hold"))}


def _ctl_media_release(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    return state.release_media_checks(Fields(body, ("trace_id",)).text("trace_id"))


def _ctl_media_wait(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    f = Fields(body, ("timeout", "release"))
    timeout = f.number("timeout")
    return state.wait_media_checks(10.0 if timeout is None else timeout, bool(f.flag("release")))


def _ctl_reset(state: EmulatorState, body: Any, query: dict[str, str]) -> Any:
    state.reset()
    return {"reset": True}


ControlHandler = Callable[[EmulatorState, Any, dict[str, str]], Any]

CONTROL_ROUTES: dict[str, dict[str, ControlHandler]] = {
    "login": {"POST": _ctl_login},
    "encrypt": {"POST": _ctl_encrypt},
    "phonecode": {"POST": _ctl_phonecode},
    "faults": {"GET": _ctl_list_faults, "POST": _ctl_add_faults, "DELETE": _ctl_clear_faults},
    "calls": {"GET": _ctl_calls, "DELETE": _ctl_clear_calls},
    "config": {"GET": _ctl_config, "POST": _ctl_configure},
    "clock": {"GET": _ctl_now, "POST": _ctl_clock},
    "apps": {"GET": _ctl_apps, "POST": _ctl_add_app},
    "reset": {"POST": _ctl_reset},
    "profile": {"POST": _ctl_profile},
    "oauth/authorize": {"POST": _ctl_oauth_authorize},
    "rules": {"GET": _ctl_rules, "POST": _ctl_set_rules, "DELETE": _ctl_clear_rules},
    "push/config": {
        "GET": _ctl_push_config,
        "POST": _ctl_set_push_config,
        "DELETE": _ctl_remove_push_config,
    },
    "push/verify": {"POST": _ctl_push_verify},
    "push/user_event": {"POST": _ctl_user_event},
    "pushes": {"GET": _ctl_pushes, "DELETE": _ctl_clear_pushes},
    "media_checks": {"GET": _ctl_media_checks, "POST": _ctl_media_settings},
    "media_checks/release": {"POST": _ctl_media_release},
    "media_checks/wait": {"POST": _ctl_media_wait},
}


def _control_handler(method: str, name: str) -> ControlHandler:
    if name.startswith("users/"):
        openid = unquote(name.removeprefix("users/"))
        if method != "GET":
            raise ControlError("use GET", status=405)
        return lambda state, body, query: state.user_info(openid, query.get("appid") or None)
    if name.startswith("pushes/") and name.count("/") == 2:
        _, push_id, action = name.split("/")
        makers = {"replay": _ctl_replay, "redeliver": _ctl_redeliver}
        if not push_id.isdigit() or action not in makers:
            raise ControlError(f"no control endpoint {name!r}", status=404)
        if method != "POST":
            raise ControlError("use POST", status=405)
        return makers[action](int(push_id))
    methods = CONTROL_ROUTES.get(name)
    if methods is None:
        raise ControlError(f"no control endpoint {name!r}", status=404)
    handler = methods.get(method)
    if handler is None:
        raise ControlError(f"use {' or '.join(methods)}", status=405)
    return handler


# ----- HTTP plumbing -----------------------------------------------------------------------


class _BadRequest(Exception):
    pass


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], state: EmulatorState, verbose: bool) -> None:
        self.state = state
        self.verbose = verbose
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn); skip it so start-up
        # never waits on a resolver.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients resetting keep-alive connections is routine; only show real errors.
        if self.verbose or not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def track(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(conn)

    def close_connections(self) -> None:
        """Unblock handler threads parked on idle keep-alive connections."""
        with self._connections_lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "WeChatEmulator/1.0"
    # Idle keep-alive connections are closed after this many seconds.
    timeout = 120
    server: EmulatorHTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle plus the
        # client's delayed ACK adds ~40 ms to every reply on a keep-alive connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    @property
    def state(self) -> EmulatorState:
        return self.server.state

    def _dispatch(self) -> None:
        try:
            request = self._read_request()
        except _BadRequest as exc:
            self.close_connection = True
            self._send(400, json.dumps({"error": str(exc)}).encode(), JSON_TYPE)
            return
        try:
            if request.path.startswith(CONTROL_PREFIX):
                self._control(request)
            elif request.path in WECHAT_ROUTES:
                self._wechat(request, WECHAT_ROUTES[request.path])
            else:
                body = wechat_json({"errcode": -1, "errmsg": "not found"})
                self._send(404, body, self.state.config()["content_type"])
        except OSError:  # the client went away mid-reply, or stop() closed the socket
            self.close_connection = True
        except Exception:
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            body = json.dumps({"errcode": -1, "errmsg": "emulator internal error"}).encode()
            self._send(500, body, JSON_TYPE)

    def _read_request(self) -> Request:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        return Request(self.command, url.path, query, self._read_body())

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError as exc:
            raise _BadRequest("bad Content-Length") from exc
        if length < 0 or length > MAX_BODY:
            raise _BadRequest("bad Content-Length")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(line, 16)
            except ValueError as exc:
                raise _BadRequest("bad chunk size") from exc
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)
            if sum(map(len, chunks)) > MAX_BODY:
                raise _BadRequest("body too large")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    # --- WeChat side ---

    def _wechat(self, request: Request, route: Route) -> None:
        record = self.state.record_call(
            route.endpoint, request.method, request.path, request.query, request.json_body()
        )
        fault = self.state.take_fault(route.endpoint)
        if fault is not None and self._apply_fault(fault, record):
            return
        try:
            if route.post_only and request.method != "POST":
                raise WeChatError(43002)
            reply = route.handler(self.state, request)
        except WeChatError as exc:
            reply = error_body(exc)
        self.state.finish_call(record, reply.get("errcode", 0))
        self._send(200, wechat_json(reply), self.state.config()["content_type"])

    def _apply_fault(self, fault: Fault, record: dict[str, Any]) -> bool:
        """Returns True when the fault replaced the normal reply."""
        if fault.delay:
            time.sleep(fault.delay)
        content_type = fault.content_type or self.state.config()["content_type"]
        if fault.drop:
            self._drop()
            return True
        if fault.body is not None:
            self.state.finish_call(record, _errcode_in(fault.body))
            self._send(200, fault.body.encode("utf-8"), content_type)
            return True
        if fault.errcode is not None:
            error = WeChatError(fault.errcode, fault.errmsg, add_rid=fault.errmsg is None)
            self.state.finish_call(record, fault.errcode)
            self._send(200, wechat_json(error_body(error)), content_type)
            return True
        return False

    def _drop(self) -> None:
        # No response at all: the client sees the connection closed under it.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # --- control API ---

    def _control(self, request: Request) -> None:
        name = request.path.removeprefix(CONTROL_PREFIX).strip("/")
        try:
            handler = _control_handler(request.method, name)
            reply = handler(self.state, self._control_body(request), request.query)
            status = 200
        except ControlError as exc:
            reply, status = {"error": exc.message}, exc.status
        body = json.dumps(reply, ensure_ascii=False).encode("utf-8")
        self._send(status, body, JSON_TYPE)

    @staticmethod
    def _control_body(request: Request) -> Any:
        if not request.raw_body.strip():
            return None
        try:
            return json.loads(request.raw_body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ControlError(f"body is not valid JSON: {exc}") from exc


def _errcode_in(body: str) -> int | None:
    """The errcode a raw fault body carries, if it happens to be a JSON object with one."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    errcode = parsed.get("errcode") if isinstance(parsed, dict) else None
    return errcode if isinstance(errcode, int) else None


class EmulatorServer:
    """The emulator on a real socket. Binds on construction; port 0 picks a free port."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        apps: Mapping[str, str] | None = None,
        *,
        verbose: bool = False,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.state = EmulatorState(apps, clock=clock)
        self._httpd = EmulatorHTTPServer((host, port), self.state, verbose)
        self._thread: threading.Thread | None = None
        self._serving = False
        self._closed = False

    @property
    def host(self) -> str:
        return self._httpd.server_name

    @property
    def port(self) -> int:
        return self._httpd.server_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> EmulatorServer:
        """Serve from a daemon thread; the socket is already listening when this returns."""
        if self._thread is not None or self._serving:
            raise RuntimeError("emulator already started")
        self._serving = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"wechat-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on the calling thread until stop() or KeyboardInterrupt."""
        if self._serving:
            raise RuntimeError("emulator already started")
        self._serving = True
        self._httpd.serve_forever(poll_interval=0.1)

    def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.state.close()
        if self._serving:
            self._httpd.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd.close_connections()
        self._httpd.server_close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
