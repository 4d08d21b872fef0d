"""The fuzz tier's vocabulary: what a request may look like (Hypothesis
strategies), which endpoints there are and what their bodies carry (the
ENDPOINTS table), and what every answer must satisfy (`Fuzz.exchange`).

A drawn request is a `Plan`: plain data that Hypothesis prints and shrinks.
It is turned into bytes only when sent, so it can name things that exist
only at run time: the live session's token (`$token` in a header) and a
fresh wx.login code (`FRESH_CODE` as a body value).

To fuzz a new endpoint, add a row to ENDPOINTS: its method, path, the body
fields it reads with the values worth trying for each, and whether it needs
a session. Every test of the tier then covers it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import string
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from support.constants import ROOT
from support.rawhttp import Answer, Connection, ProtocolError, chunked, request_bytes

LIMIT = 64 * 1024  # the service's body limit (app.MAX_BODY_BYTES)

# -- Hypothesis settings ------------------------------------------------------------
# `ci` (the default) is derandomized and keeps no example database: every run
# sends the same requests. `HYPOTHESIS_PROFILE=explore` draws new ones, ten
# times as many, and remembers failures under .pytest_cache/hypothesis.

COMMON = {
    "deadline": None,
    "suppress_health_check": [
        HealthCheck.function_scoped_fixture,  # one session per test, on purpose
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
    "print_blob": True,
}
settings.register_profile("ci", derandomize=True, database=None, **COMMON)
settings.register_profile(
    "explore",
    database=DirectoryBasedExampleDatabase(str(ROOT / ".pytest_cache" / "hypothesis")),
    **COMMON,
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
SCALE = 10 if PROFILE == "explore" else 1


def examples(n: int) -> settings:
    """Settings for a test of `n` examples (ten times as many when exploring)."""
    return settings(settings.get_profile(PROFILE), max_examples=n * SCALE)


# -- the contract: README's error table ------------------------------------------

README = (ROOT / "README.md").read_text()
ERRORS: dict[str, tuple[int, int]] = {
    slug: (int(status), int(code))
    for status, slug, code in re.findall(
        r"\|\s*(\d{3})\s*\|\s*`([a-z_]+)`\s*\|\s*(\d+)\s*\|", README
    )
}
# The only 5xx a client may see: something the service depends on is down.
OUTAGES = {"session_store_unavailable", "database_unavailable", "not_ready"} | {
    slug for slug in ERRORS if slug.startswith("wechat_")
}
# Statuses gunicorn itself answers for a request it cannot parse (the answer
# never reaches Flask); they carry the `bad_request` slug.
PROTOCOL_STATUSES = {414, 417, 431}


# -- what a request is -------------------------------------------------------------


class Fresh:
    """A value that only exists at send time; the test's `fresh` callback makes it."""


@dataclass(frozen=True)
class FreshCode(Fresh):
    """A wx.login code from the emulator, never used before."""

    def __repr__(self) -> str:
        return "FRESH_CODE"


@dataclass(frozen=True)
class Sealed(Fresh):
    """`field` ("encryptedData" or "iv") of `plaintext` encrypted by the emulator
    under the user's session_key; `$openid` in the plaintext is the user's."""

    field: str
    plaintext: str


@dataclass(frozen=True)
class Signed(Fresh):
    """sha1(raw_data + session_key): the signature WeChat would send."""

    raw_data: str


FRESH_CODE = FreshCode()


class RawNumber(str):
    """A JSON number written exactly as given (10**5000, 1e999, -0)."""

    def __repr__(self) -> str:
        return f"RawNumber({str(self)[:40]!r}{'...' if len(self) > 40 else ''})"


@dataclass(frozen=True)
class Body:
    """What the body says, before framing: its encoding, its value and the
    Content-Type header sent with it (None: no header)."""

    encoding: str  # json | json-ascii | json-surrogates | form | multipart | raw
    value: Any = None
    content_type: str | None = None


@dataclass(frozen=True)
class Framing:
    """How the body travels: `length` (a true Content-Length), `none`, or one
    of the variations below with its detail."""

    kind: str = "length"
    detail: Any = None


@dataclass(frozen=True)
class Plan:
    method: str
    target: str
    auth: str = "none"  # a key of AUTH
    headers: tuple[tuple[str, str], ...] = ()
    body: Body = field(default_factory=lambda: Body("raw", b""))
    framing: Framing = field(default_factory=Framing)
    version: str = "HTTP/1.1"


@dataclass
class Wire:
    """A plan made concrete: the bytes, and how the exchange must go."""

    data: bytes
    body_length: int
    complete: bool = True  # the server can frame the whole request from `data`
    pipelined: bool = False  # `data` holds bytes after the request (a next "request")


# -- rendering ---------------------------------------------------------------------


def to_json(value: Any, ascii_only: bool = False) -> str:
    if isinstance(value, RawNumber):
        return str(value)
    if isinstance(value, Fresh):
        raise TypeError("render fresh values first")
    if isinstance(value, dict):
        items = (
            f"{json.dumps(k, ensure_ascii=ascii_only)}:{to_json(v, ascii_only)}"
            for k, v in value.items()
        )
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(to_json(v, ascii_only) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


def resolve(value: Any, fresh: Callable[[Fresh], Any]) -> Any:
    if isinstance(value, Fresh):
        return fresh(value)
    if isinstance(value, dict):
        return {k: resolve(v, fresh) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [resolve(v, fresh) for v in value]
    return value


def render_body(body: Body, fresh: Callable[[Fresh], Any]) -> bytes:
    value = resolve(body.value, fresh)
    if body.encoding == "raw":
        return value
    if body.encoding == "json":
        # Lone surrogates cannot be UTF-8: such values go out as \u escapes.
        try:
            return to_json(value).encode("utf-8")
        except UnicodeEncodeError:
            return to_json(value, ascii_only=True).encode("ascii")
    if body.encoding == "json-ascii":
        return to_json(value, ascii_only=True).encode("ascii")
    if body.encoding == "json-surrogates":  # CESU-ish bytes: not valid UTF-8
        return to_json(value).encode("utf-8", "surrogatepass")
    if body.encoding == "form":
        pairs = []
        for name, item in value:
            text = item if isinstance(item, str) else to_json(item)
            pairs.append(
                quote(name, safe="", errors="surrogatepass")
                + "="
                + quote(text, safe="", errors="surrogatepass")
            )
        return "&".join(pairs).encode("ascii")
    if body.encoding == "multipart":
        boundary, parts = value
        out = b""
        for name, filename, data in parts:
            disposition = f'form-data; name="{name}"'
            if filename is not None:
                disposition += f'; filename="{filename}"'
            out += (
                b"--"
                + boundary
                + b"\r\nContent-Disposition: "
                + disposition.encode("utf-8", "surrogatepass")
                + b"\r\n\r\n"
                + data
                + b"\r\n"
            )
        return out + b"--" + boundary + b"--\r\n"
    raise ValueError(body.encoding)


def frame(framing: Framing, body: bytes) -> tuple[list[tuple[str, str]], bytes, bool, bool]:
    """(framing headers, bytes after the head, complete, pipelined)."""
    kind, detail = framing.kind, framing.detail
    length = str(len(body))
    if kind == "length":
        return [("Content-Length", length)], body, True, False
    if kind == "none":  # no framing header: a body would be the next request
        return [], body, True, bool(body)
    if kind == "cl-short":  # the rest is read as the next request
        cut = max(0, len(body) - detail)
        return [("Content-Length", str(cut))], body, True, cut < len(body)
    if kind == "cl-long":  # the server waits for bytes that never come
        return [("Content-Length", str(len(body) + detail))], body, False, False
    if kind == "cl-value":  # a Content-Length that is not a plain length
        return [("Content-Length", detail)], body, True, True
    if kind == "cl-twice":
        return [("Content-Length", length), ("Content-Length", detail or length)], body, True, True
    if kind == "chunked":
        sizes, extension, trailers = detail
        data = chunked(body, sizes)
        if extension:
            data = data.replace(b"\r\n", extension + b"\r\n", 1)
        if trailers:
            data = data[: -len(b"\r\n")] + trailers + b"\r\n"
        return [("Transfer-Encoding", "chunked")], data, True, False
    if kind == "chunked-bad":
        data, complete = detail
        return [("Transfer-Encoding", "chunked")], data, complete, False
    if kind == "chunked+length":
        return (
            [("Transfer-Encoding", "chunked"), ("Content-Length", length)],
            chunked(body),
            True,
            True,
        )
    if kind == "te":  # other Transfer-Encoding values, the body as chunks
        return [("Transfer-Encoding", detail)], chunked(body), True, True
    raise ValueError(kind)


# -- strategies: values ------------------------------------------------------------

LENGTHS = [
    0,
    1,
    15,
    16,
    17,
    23,
    24,
    43,
    44,
    63,
    64,
    65,
    127,
    128,
    129,
    255,
    256,
    257,
    1024,
    8192,
    8193,
    16384,
    16385,
]
SPECIAL_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "\udfff",
    "a\ud83d",
    "\ufeff",
    "微信用户",
    "🐱" * 64,
    "\u202e",
    "null",
    "true",
    "[]",
    "{}",
    "0",
    "-1",
    "1e309",
    "wxapp",
    "WXAPP",
    "wxapp ",
    "\t\n\r",
    "\\",
    '"',
    "'; DROP TABLE users; --",
    "%00",
    "../../etc/passwd",
    "$token",
]

characters = st.characters() | st.characters(categories=["Cs"]) | st.sampled_from("\x00\n\r\t ")
texts = (
    st.text(characters, max_size=40)
    | st.sampled_from(SPECIAL_TEXT)
    | st.builds(lambda c, n: c * n, characters, st.sampled_from([*LENGTHS, 70000]))
)
big_numbers = st.sampled_from(
    [
        "1" * 4301,
        "1" * 5000,
        "-" + "9" * 400,
        "1e999",
        "-1e999",
        "1E-999",
        "-0",
        "0.0",
        "123456789012345678901234567890",
        "1" + "0" * 20 + ".5",
        "2e308",
    ]
).map(RawNumber)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | big_numbers
    | texts
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=8,
)
# Deep nesting: past the JSON parser's recursion limit, and past the body limit.
deep_values = st.builds(
    lambda depth, kind: RawNumber(
        ("[" * depth + "]" * depth) if kind else ('{"a":' * depth + "1" + "}" * depth)
    ),
    st.sampled_from([64, 999, 1001, 5000, 20_000, 40_000]),
    st.booleans(),
)
any_json = json_values | deep_values


def b64_mangled(data: bytes, how: str) -> str:
    text = base64.b64encode(data).decode()
    if how == "urlsafe":
        return base64.urlsafe_b64encode(data).decode()
    if how == "unpadded":
        return text.rstrip("=")
    if how == "spaces":  # a form encoder that did not escape '+'
        return text.replace("+", " ")
    if how == "lines":
        return "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    if how == "extra-padding":
        return text + "=="
    if how == "inner-padding":
        return text[:4] + "=" + text[4:]
    if how == "junk":
        return text[: len(text) // 2] + "*!" + text[len(text) // 2 :]
    if how == "unicode":
        return text + "é"
    return text


B64_MODES = st.sampled_from(
    [
        "std",
        "std",
        "std",
        "urlsafe",
        "unpadded",
        "spaces",
        "lines",
        "extra-padding",
        "inner-padding",
        "junk",
        "unicode",
    ]
)
base64ish = st.builds(
    b64_mangled,
    st.binary(max_size=80) | st.sampled_from(LENGTHS).map(lambda n: b"\x01" * n),
    B64_MODES,
)
# Whole AES blocks, and 16-byte ivs, so the checks after the length ones run too.
ciphertexts = base64ish | st.builds(
    b64_mangled,
    st.integers(1, 8).flatmap(lambda n: st.binary(min_size=16 * n, max_size=16 * n)),
    B64_MODES,
)
ivs = base64ish | st.builds(b64_mangled, st.binary(min_size=16, max_size=16), B64_MODES)
login_codes = (
    st.just(FRESH_CODE)
    | st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=140)
    | texts
)
flags = st.sampled_from([True, False, "true", "false", "1", "0", "", "TRUE", "yes", 1, 0, 2])


# -- the endpoints ----------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    # The body fields the endpoint reads, each with the values worth trying
    # besides any JSON value at all.
    fields: Mapping[str, st.SearchStrategy] = field(default_factory=dict)
    # Needs a live session to get past 401 (the tests send one most of the time).
    session: bool = False
    # Reads a body (so one over 64 KB must be refused); by default POST, PUT, PATCH.
    body: bool | None = None

    @property
    def reads_body(self) -> bool:
        return self.body if self.body is not None else self.method in {"POST", "PUT", "PATCH"}

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


ENDPOINTS = [
    Endpoint("POST", "/oauth/login", {"code": login_codes, "type": texts}),
    Endpoint("POST", "/oauth/logout", {"all": flags}, session=True),
    Endpoint("GET", "/oauth/check", session=True),
    Endpoint("GET", "/user/info", session=True),
    Endpoint(
        "POST",
        "/user/bindinfo",
        {"encryptedData": ciphertexts, "iv": ivs, "rawData": texts, "signature": texts},
        session=True,
    ),
    Endpoint(
        "POST",
        "/user/bindphone",
        {"code": login_codes, "encryptedData": ciphertexts, "iv": ivs},
        session=True,
    ),
    Endpoint("GET", "/healthz"),
    Endpoint("GET", "/readyz"),
]


# -- strategies: requests ------------------------------------------------------------

# How the session (or something like one) is presented; `$token` is the live token.
AUTH: dict[str, tuple[tuple[str, str], ...]] = {
    "none": (),
    "bearer": (("Authorization", "Bearer $token"),),
    "cookie": (("Cookie", "sid=$token"),),
    "bearer-lowercase": (("Authorization", "bearer   $token  "),),
    "cookie-among-others": (("Cookie", 'a=1; sid=$token; b="x;y"; sid=nope'),),
    "bearer-and-bad-cookie": (("Authorization", "Bearer $token"), ("Cookie", "sid=bad")),
    "bad-bearer": (("Authorization", "Bearer " + "A" * 43),),
    "basic": (("Authorization", "Basic dXNlcjpwYXNz"),),
    "empty-bearer": (("Authorization", "Bearer "),),
    "token-twice": (("Authorization", "Bearer $token $token"),),
    "bearer-latin1": (("Authorization", "Bearer $token\xe9\xff"),),
    "long-bearer": (("Authorization", "Bearer " + "x" * 8000),),
    "cookie-garbage": (("Cookie", ';;=;sid;=sid=;"sid"=$token; sid="$token"'),),
    "cookie-latin1": (("Cookie", "sid=\xe9\xff$token"),),
    "cookie-many": (("Cookie", "; ".join(f"c{i}=v{i}" for i in range(300))),),
}
# Mostly a live session, so the session-only endpoints get past 401.
auths = st.sampled_from(["bearer", "cookie"]) | st.sampled_from(sorted(AUTH))

CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=UTF-16",
    'application/json;charset="utf-8"',
    "APPLICATION/JSON",
    "application/json; boundary=x",
    "application/json;;;",
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=latin-1",
    "multipart/form-data",
    "multipart/form-data; boundary=",
    "multipart/form-data; boundary=" + "b" * 300,
    "multipart/form-data; boundary=xyz",
    "text/plain",
    "text/plain; charset=gbk",
    "",
    "application/octet-stream",
    ";;;",
    "a/b; c",
    "*/*",
    "text/html; charset=\xe9",
]
content_types = st.sampled_from(CONTENT_TYPES) | st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60
)


def object_bodies(endpoint: Endpoint) -> st.SearchStrategy[dict]:
    """A JSON object with any of the endpoint's fields, each a value meant for
    it or any JSON value, and now and then a field nobody reads."""
    fields = endpoint.fields
    # Some of the fields, each with a value meant for it: past the type checks.
    typed = (
        st.lists(st.sampled_from(list(fields)), unique=True).flatmap(
            lambda names: st.fixed_dictionaries({name: fields[name] for name in names})
        )
        if fields
        else st.just({})
    )
    optional = {name: values | any_json for name, values in fields.items()}
    return (
        typed
        | st.fixed_dictionaries({}, optional=optional)
        | st.dictionaries(st.sampled_from([*fields, "x", ""]) | texts, any_json, max_size=4)
    )


def json_bodies(endpoint: Endpoint) -> st.SearchStrategy[Body]:
    return st.builds(
        Body,
        st.sampled_from(["json", "json", "json-ascii", "json-surrogates"]),
        object_bodies(endpoint) | any_json,
        st.sampled_from(["application/json", "text/plain", None]) | content_types,
    )


def form_values(endpoint: Endpoint) -> st.SearchStrategy[list]:
    names = st.sampled_from([*endpoint.fields, "x"]) | texts
    values = st.one_of(*endpoint.fields.values(), texts) if endpoint.fields else texts
    return st.lists(st.tuples(names, values), max_size=5)


def multipart_parts(endpoint: Endpoint) -> st.SearchStrategy:
    names = st.sampled_from([*endpoint.fields, "x"]) | st.text(max_size=10)
    data = st.binary(max_size=100) | texts.map(lambda t: t.encode("utf-8", "surrogatepass"))
    part = st.tuples(names, st.none() | st.just("f.txt") | st.text(max_size=10), data)
    boundary = st.sampled_from([b"xyz", b"b" * 70, b"----WebKitFormBoundary7MA4YWxkTrZu0gW"])
    return st.tuples(boundary, st.lists(part, max_size=4))


def other_bodies(endpoint: Endpoint) -> st.SearchStrategy[Body]:
    """Form-encoded, multipart, text, bytes that are not UTF-8, any Content-Type."""
    return st.one_of(
        st.builds(
            Body,
            st.just("form"),
            form_values(endpoint),
            st.sampled_from(
                [
                    "application/x-www-form-urlencoded",
                    "application/x-www-form-urlencoded; charset=utf-8",
                ]
            ),
        ),
        st.builds(
            Body,
            st.just("multipart"),
            multipart_parts(endpoint),
            st.sampled_from(
                ["xyz", "b" * 70, "----WebKitFormBoundary7MA4YWxkTrZu0gW", "other"]
            ).map(lambda b: f"multipart/form-data; boundary={b}"),
        ),
        st.builds(Body, st.just("raw"), st.binary(max_size=200), content_types | st.none()),
        st.builds(
            Body,
            st.just("raw"),
            st.sampled_from(
                [
                    b'{"code": "\xff\xfe"}',
                    b'{"\xc3": 1}',
                    b"\xef\xbb\xbf{}",
                    b"\xff\xfe{\x00}\x00",
                    b"\x00" * 10,
                    b"{" + b"\x80" * 50 + b"}",
                    b"code=%ff%fe&all=%zz",
                    b"%",
                    b"a=1&&&=&b",
                    b"\r\n\r\n",
                ]
            ),
            content_types | st.none(),
        ),
    )


def oversized_bodies(endpoint: Endpoint) -> st.SearchStrategy[Body]:
    """Over the 64 KB limit: a valid object padded with whitespace (what a
    truncating reader would happily accept), or one long value."""
    first = next(iter(endpoint.fields), "x")
    return st.builds(
        lambda extra, padded: Body(
            "raw",
            (b'{"' + first.encode() + b'": "abc"}' + b" " * (LIMIT - 20 + extra))
            if padded
            else b'{"' + first.encode() + b'": "' + b"a" * (LIMIT + extra) + b'"}',
            "application/json",
        ),
        st.sampled_from([1, 100, 5000, 200_000]),
        st.booleans(),
    )


chunk_sizes = st.lists(st.integers(1, 300), max_size=5)
chunk_extensions = st.sampled_from(
    [
        b"",
        b";a",
        b";a=b",
        b';a="q\\"x"',
        b" ;a=b",
        b";",
        b";=",
        b"; a b",
        b";a=\r",
        b";\x00",
        b";a=" + b"x" * 9000,
    ]
)
trailers = st.sampled_from(
    [
        b"",
        b"X-Trailer: 1\r\n",
        b"Content-Length: 5\r\n",
        b"Authorization: Bearer x\r\n",
        b"Bad Header\r\n",
        b"X: a\nb\r\n",
        b" folded\r\n",
        b"X-A: 1\r\n" * 200,
        b"X-Long: " + b"y" * 9000 + b"\r\n",
    ]
)


@st.composite
def bad_chunked(draw: st.DrawFn, body: bytes) -> Framing:
    """A chunked body broken in one way; `complete` says whether the server
    can see the end of it without waiting for more."""
    size = b"%x" % max(len(body), 1)
    data = body or b"x"
    variants = {
        "size-not-hex": (b"zz\r\n" + data + b"\r\n0\r\n\r\n", True),
        "size-negative": (b"-" + size + b"\r\n" + data + b"\r\n0\r\n\r\n", True),
        "size-0x": (b"0x" + size + b"\r\n" + data + b"\r\n0\r\n\r\n", True),
        "size-space": (b" " + size + b"\r\n" + data + b"\r\n0\r\n\r\n", True),
        "size-empty": (b"\r\n" + data + b"\r\n0\r\n\r\n", True),
        # gunicorn refuses the line only if it arrives in pieces; in one piece it
        # is a huge size, and the server waits for the data.
        "size-line-too-long": (b"1" * 9000 + b"\r\n", False),
        "size-huge": (b"f" * 24 + b"\r\n" + data + b"\r\n", False),
        "size-larger-than-data": (b"%x" % (len(data) + 10) + b"\r\n" + data + b"\r\n", False),
        "size-smaller-than-data": (
            b"%x" % max(len(data) - 1, 0) + b"\r\n" + data + b"\r\n0\r\n\r\n",
            len(data) > 1,
        ),
        "no-crlf-after-data": (size + b"\r\n" + data + b"XX0\r\n\r\n", True),
        "bad-extension": (size + b";=\r\n" + data + b"\r\n0\r\n\r\n", True),
        "bare-cr-extension": (size + b";a=\rb\r\n" + data + b"\r\n0\r\n\r\n", True),
        "missing-last-chunk": (size + b"\r\n" + data + b"\r\n", False),
        "last-chunk-no-crlf": (size + b"\r\n" + data + b"\r\n0\r\n", False),
        "lf-only": (size + b"\n" + data + b"\n0\n\n", False),
        "forbidden-trailer": (size + b"\r\n" + data + b"\r\n0\r\nHost: x\r\n\r\n", True),
        "bare-lf-trailer": (size + b"\r\n" + data + b"\r\n0\r\nX: 1\nY: 2\r\n\r\n", True),
        "trailers-too-long": (
            size + b"\r\n" + data + b"\r\n0\r\n" + b"X-A: " + b"a" * 300_000 + b"\r\n\r\n",
            True,
        ),
        "nothing": (b"", False),
    }
    name = draw(st.sampled_from(sorted(variants)))
    return Framing("chunked-bad", variants[name])


@st.composite
def framings(draw: st.DrawFn, body: bytes) -> Framing:
    kind = draw(
        st.sampled_from(
            [
                "length",
                "length",
                "chunked",
                "chunked",
                "chunked-bad",
                "cl-short",
                "cl-long",
                "cl-value",
                "cl-twice",
                "chunked+length",
                "te",
                "none",
            ]
        )
    )
    if kind == "chunked":
        return Framing(kind, (draw(chunk_sizes), draw(chunk_extensions), draw(trailers)))
    if kind == "chunked-bad":
        return draw(bad_chunked(body))
    if kind == "cl-short":
        return Framing(kind, draw(st.integers(1, 50)))
    if kind == "cl-long":
        return Framing(kind, draw(st.sampled_from([1, 10, 1000, 10**9])))
    if kind == "cl-value":
        return Framing(
            kind,
            draw(
                st.sampled_from(
                    [
                        "-1",
                        "abc",
                        "1e3",
                        "+5",
                        " 5 ",
                        "0x10",
                        "5,5",
                        "",
                        "\xb2",
                        "\xbd",
                        "9" * 23,
                        str(len(body)) + " ",
                        "0" + str(len(body)),
                    ]
                )
            ),
        )
    if kind == "cl-twice":
        return Framing(kind, draw(st.sampled_from([None, "0", "1", "-1"])))
    if kind == "te":
        return Framing(
            kind,
            draw(
                st.sampled_from(
                    [
                        "Chunked",
                        "chunked, chunked",
                        "gzip, chunked",
                        "identity, chunked",
                        "chunked, gzip",
                        "gzip",
                        "identity",
                        "x-custom",
                        "chunked;q=1",
                        " chunked",
                        "chunked\t",
                        "",
                        "*",
                    ]
                )
            ),
        )
    return Framing(kind)


odd_headers = st.lists(
    st.sampled_from(
        [
            ("Expect", "100-continue"),
            ("Expect", "something-else"),
            ("Connection", "close"),
            ("Connection", "keep-alive, Upgrade"),
            ("Upgrade", "h2c"),
            ("Upgrade", "websocket"),
            ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"),
            ("X-Forwarded-For", "1.2.3.4, not an ip"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Proto", "javascript"),
            ("X_Forwarded_For", "1.1.1.1"),
            ("SCRIPT_NAME", "/prefix"),
            ("SCRIPT_NAME", "/oauth"),
            ("PATH_INFO", "/user/info"),
            ("Content-Encoding", "gzip"),
            ("Range", "bytes=0-1"),
            ("If-None-Match", "*"),
            ("Accept", "text/html"),
            ("Accept-Charset", "\xff"),
            ("Host", ""),
            ("Host", "a b"),
            ("X-Many", "x" * 8000),
            ("Origin", "null"),
            ("User-Agent", "\x80\xff"),
            ("Cookie", ""),
            ("Content-Type", "application/json"),
        ]
    ),
    max_size=3,
)


def target_paths(path: str) -> st.SearchStrategy[str]:
    return st.sampled_from(
        [
            path,
            path + "?",
            path + "?a=1&b",
            path + "/",
            path + "#f",
            path.upper(),
            path + "?code=x",
            "http://h" + path,
            path + "%00",
            "//" + path.lstrip("/"),
            path + "?" + "q" * 9000,
        ]
    )


def plain_framings(body: bytes) -> st.SearchStrategy[Framing]:
    """A true Content-Length, or well-formed chunks."""
    return st.just(Framing()) | st.builds(
        Framing, st.just("chunked"), st.tuples(chunk_sizes, st.just(b""), st.just(b""))
    )


@st.composite
def requests(
    draw: st.DrawFn,
    endpoint: Endpoint,
    bodies: st.SearchStrategy[Body],
    framing: Callable[[bytes], st.SearchStrategy[Framing]] | None = None,
    headers: bool = False,
) -> Plan:
    """A request to `endpoint` with a body from `bodies`; `framing` (given the
    body's bytes) draws how it travels, else a true Content-Length."""
    body = draw(bodies)
    wire_body = render_body(body, lambda _: "x") if framing else b""
    return Plan(
        method=endpoint.method,
        target=endpoint.path if not headers else draw(target_paths(endpoint.path)),
        auth=draw(auths) if endpoint.session else draw(st.sampled_from(["none", "bearer"])),
        headers=tuple(draw(odd_headers)) if headers else (),
        body=body,
        framing=draw(framing(wire_body)) if framing else Framing(),
    )


methods = st.sampled_from(
    [
        "GET",
        "POST",
        "PUT",
        "DELETE",
        "PATCH",
        "HEAD",
        "OPTIONS",
        "TRACE",
        "CONNECT",
        "PROPFIND",
        "get",
        "G3T",
        "A" * 30,
        "GET\x00",
        "POST ",
        "M-SEARCH",
        "BREW",
    ]
) | st.text(st.sampled_from(string.ascii_uppercase + "-_!#"), min_size=1, max_size=12)
paths = st.one_of(
    st.sampled_from(
        [e.path for e in ENDPOINTS]
        + [
            "/",
            "/oauth",
            "/user",
            "/user/info/x",
            "*",
            "/%",
            "/%zz",
            "/%ff",
            "/..",
            "/.%2e/",
            "/" + "a" * 9000,
            "/user/%E2%80%AE",
        ]
    ),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=60).map(
        lambda t: "/" + t
    ),
    st.text(max_size=20).map(lambda t: "/" + quote(t, safe="/", errors="surrogatepass")),
)
versions = st.sampled_from(
    [
        "HTTP/1.1",
        "HTTP/1.1",
        "HTTP/1.0",
        "HTTP/0.9",
        "HTTP/2.0",
        "HTTP/1.10",
        "http/1.1",
        "HTTP/1.1 x",
    ]
)


@st.composite
def odd_requests(draw: st.DrawFn) -> Plan:
    """Unknown paths and methods, and request lines that are not quite HTTP."""
    return Plan(
        method=draw(methods),
        target=draw(paths),
        auth=draw(st.sampled_from(["none", "bearer", "cookie"])),
        body=draw(
            st.sampled_from([Body("raw", b""), Body("raw", b'{"code": "x"}', "application/json")])
        ),
        version=draw(versions),
    )


# -- strategies: sealed open data (bindinfo, bindphone) ------------------------------

GREY_AVATAR = (
    "https://thirdwx.qlogo.cn/mmopen/vi_32/POgEwh4mIHO4nibH0KlMECNjjGxQUq24ZEaGT4poC6icRicc"
    "VGKSyXwibcPq4BWmiaIGuG1icwxaQX6grC9VemZoJ8rg/132"
)
profile_texts = texts | st.sampled_from(
    [
        "小明🐱",
        "微信用户",
        GREY_AVATAR,
        "a\x00b",
        "\ud800",
        "x\udfffy",
        "\x00",
        "a" * 255,
        "a" * 256,
        "🐱" * 255,
        "🐱" * 256,
        "h" * 1024,
        "h" * 1025,
        "zh_CN",
        "x" * 32,
        "x" * 33,
        "x" * 128,
        "x" * 129,
    ]
)
PROFILE_FIELDS = {
    "nickName": profile_texts,
    "avatarUrl": profile_texts,
    "gender": st.sampled_from([0, 1, 2, 3, -1, 1.0, True, "1", None]),
    "city": profile_texts,
    "province": profile_texts,
    "country": profile_texts,
    "language": profile_texts,
    "unionId": profile_texts | st.just("u" * 64) | st.just("u" * 65),
    "openId": st.just("$openid") | texts,
    "is_demote": flags,
}
# What WeChat really sends: a sealed payload starts from one of these, and
# the fuzz changes a field or two, so most payloads get as far as the database.
VALID_PROFILE = {
    "nickName": "小明",
    "gender": 1,
    "language": "zh_CN",
    "city": "Guangzhou",
    "province": "Guangdong",
    "country": "CN",
    "avatarUrl": "https://thirdwx.qlogo.cn/x/132",
}
VALID_PHONE = {
    "phoneNumber": "+86 13800138000",
    "purePhoneNumber": "13800138000",
    "countryCode": "86",
}
PHONE_FIELDS = {
    "phoneNumber": profile_texts | st.just("+86 138-0013-8000") | st.integers(),
    "purePhoneNumber": profile_texts | st.just("13800138000") | st.integers(),
    "countryCode": profile_texts | st.sampled_from(["86", 86, 10**9, "123456789"]),
}


timestamps = (
    st.integers(min_value=-(10**500), max_value=10**500)  # past float's range too
    | st.integers()
    | st.floats()
    | big_numbers
    | st.sampled_from([-1, 0, 2**53, 2**63, 2**64, "1700000000", True, None, [], {}])
)


@st.composite
def watermarks(draw: st.DrawFn, appid: str, now: int) -> Any:
    """Mostly ours and fresh; else our appid with an odd timestamp (the age
    check is reached), a timestamp off by more than the allowed age, another
    appid, none, or any JSON at all."""
    choice = draw(st.sampled_from(["good"] * 4 + ["timestamp"] * 2 + ["stale", "other"]))
    if choice == "good":
        return {"timestamp": now, "appid": appid}
    if choice == "timestamp":
        return {"timestamp": draw(timestamps), "appid": appid}
    if choice == "stale":
        return {"timestamp": now + draw(st.sampled_from([-601, 601, -(10**6)])), "appid": appid}
    return draw(
        st.none() | any_json | st.fixed_dictionaries({"appid": texts, "timestamp": st.just(now)})
    )


@st.composite
def plaintexts(draw: st.DrawFn, fields: dict[str, st.SearchStrategy], appid: str, now: int) -> str:
    """What the data decrypts to: mostly what WeChat sends with a field or
    two changed to odd values (so the bind gets as far as the database);
    else an object of odd fields, JSON of another type, or not JSON."""
    kind = draw(st.sampled_from(["mutated"] * 6 + ["object"] * 2 + ["json", "text"]))
    if kind == "json":
        return to_json(draw(any_json), ascii_only=True)
    if kind == "text":
        return draw(
            st.sampled_from(
                [
                    "",
                    "{",
                    "null",
                    "\ufeff{}",
                    '{"a":1}{"b":2}',
                    "NaN",
                    '{"watermark":{"appid":"' + appid + '"}',
                ]
            )
        )
    if kind == "mutated":
        payload = dict(VALID_PHONE if "phoneNumber" in fields else VALID_PROFILE)
        for name in draw(st.lists(st.sampled_from(sorted(fields)), max_size=2, unique=True)):
            payload[name] = draw(fields[name])
    else:
        payload = draw(
            st.fixed_dictionaries(
                {}, optional={name: values | any_json for name, values in fields.items()}
            )
        )
    watermark = draw(watermarks(appid, now))
    if watermark is not None:
        payload["watermark"] = watermark
    return to_json(payload, ascii_only=True)


@st.composite
def sealed_bodies(
    draw: st.DrawFn, fields: dict[str, st.SearchStrategy], appid: str, now: int, signed: bool
) -> Body:
    plaintext = draw(plaintexts(fields, appid, now))
    body: dict[str, Any] = {
        "encryptedData": Sealed("encryptedData", plaintext),
        # Now and then the iv of other data: the key opens nothing.
        "iv": Sealed("iv", plaintext + draw(st.sampled_from([""] * 9 + [" "]))),
    }
    if signed:
        raw = draw(st.none() | texts | st.just(plaintext))
        signature = draw(st.none() | texts | st.just(Signed(raw or "")))
        if raw is not None:
            body["rawData"] = raw
        if signature is not None:
            body["signature"] = signature
    encoding = draw(st.sampled_from(["json", "json", "form"]))
    if encoding == "form":
        return Body("form", list(body.items()), "application/x-www-form-urlencoded")
    return Body("json", body, "application/json")


# -- sending a plan, and the property -------------------------------------------


def wire(plan: Plan, token: str, fresh: Callable[[Fresh], Any]) -> Wire:
    body = render_body(plan.body, fresh)
    headers: list[tuple[str, str]] = [("Host", "127.0.0.1")]
    if plan.body.content_type is not None:
        headers.append(("Content-Type", plan.body.content_type))
    headers += [(name, value.replace("$token", token)) for name, value in AUTH[plan.auth]]
    headers += list(plan.headers)
    framing_headers, payload, complete, pipelined = frame(plan.framing, body)
    if plan.method in ("GET", "HEAD") and plan.framing.kind == "length" and not body:
        framing_headers = []  # what clients send for a bodiless GET
    data = request_bytes(plan.method, plan.target, headers + framing_headers, payload, plan.version)
    if plan.version != "HTTP/1.1":
        pipelined = True  # whether the server keeps the connection is its call
    return Wire(data, len(body), complete, pipelined)


HEALTH = request_bytes("GET", "/healthz", [("Host", "127.0.0.1")])


def outcome(answer: Answer) -> str:
    try:
        slug = json.loads(answer.body).get("error") if answer.status >= 400 else None
    except (ValueError, AttributeError):
        slug = "?"
    return f"{answer.status} {slug}" if slug else str(answer.status)


class Fuzz:
    """Sends plans to the running service and checks every answer.

    The property, for every request whatever it is:
      - no 5xx but a documented outage answer;
      - every answer is JSON: `{"code": 0, "data"}`, or an error
        `{"code": non-zero, "error": slug, "message"}` with a slug and status
        from the README's table;
      - no secret (session_key, openid, unionid, the app secret) in an answer;
      - the answer's Connection header is the truth: after keep-alive the next
        request on the connection is answered, after close the server closes;
      - the service stays up: /healthz answers after every case;
      - no worker logs a traceback or an error.
    """

    def __init__(
        self,
        url: str,
        log: Path,
        secrets: set[str],
        fresh: Callable[[Fresh], Any],
        token: Callable[[], str],
    ) -> None:
        self.url = url
        self.log = log
        self.secrets = secrets
        self.fresh = fresh
        self.token = token
        self.log_offset = log.stat().st_size if log.exists() else 0
        self.cases = 0
        self.answers = 0
        self.outcomes: Counter[str] = Counter()  # "200" or "400 invalid_body", first answers
        self.session_ended = False

    def exchange(self, plan: Plan, endpoint: Endpoint | None = None) -> list[Answer]:
        self.cases += 1
        try:
            answers = self._exchange(plan, endpoint)
        except AssertionError as exc:
            # The case's log lines belong to it (not to the next case), and a
            # traceback there says more than the answer.
            logged = error_lines(self.new_log())
            if logged:
                raise AssertionError(f"{exc}\nthe workers logged:\n" + "\n".join(logged)) from None
            raise
        self.check_log()
        return answers

    def _exchange(self, plan: Plan, endpoint: Endpoint | None) -> list[Answer]:
        sent = wire(plan, self.token(), self.fresh)
        answers = self.send(sent, plan.method)
        self.outcomes[outcome(answers[0])] += 1
        for answer in answers:
            self.check(answer, plan.method)
            if plan.target.startswith("/oauth/logout") and answer.status == 200:
                self.session_ended = True
        if endpoint is not None and endpoint.reads_body and sent.body_length > LIMIT:
            self.check_refused(plan, endpoint, answers[0])
        return answers

    def check_refused(self, plan: Plan, endpoint: Endpoint, answer: Answer) -> None:
        """A well-framed body over the limit is refused as too large (or the
        endpoint answers 401 before reading it); never read as a shorter one."""
        kind, detail = plan.framing.kind, plan.framing.detail
        plain = kind == "length" or (kind == "chunked" and not detail[1] and not detail[2])
        as_is = plan.target == endpoint.path and not plan.headers and plan.version == "HTTP/1.1"
        if plain and as_is:
            slug = json.loads(answer.body).get("error") if answer.status >= 400 else None
            assert slug in ("payload_too_large", "unauthorized"), (
                f"a body over {LIMIT} bytes was not refused as too large:\n{answer.text()[:800]}"
            )

    def send(self, sent: Wire, method: str) -> list[Answer]:
        with Connection(self.url) as conn:
            conn.send(sent.data)
            if not sent.complete or sent.pipelined:
                conn.finish_sending()
            answers = [conn.read_answer(method)]
            if sent.complete and not sent.pipelined:
                if answers[0].keeps_alive:
                    conn.send(HEALTH)
                    try:
                        health = conn.read_answer()
                    except ProtocolError as exc:
                        raise AssertionError(
                            f"the answer promised keep-alive, but the next request on the "
                            f"connection was lost ({exc}):\n{answers[0].text()}"
                        ) from None
                    self.check(health, "GET")
                    assert health.status == 200, f"health on the same connection: {health.text()}"
                    return answers
                assert conn.closed_by_server(), (
                    f"the answer said Connection: close but the server kept the connection:\n"
                    f"{answers[0].text()}"
                )
            else:
                while not conn.closed_by_server():
                    answers.append(conn.read_answer())
                if not sent.pipelined:
                    assert len(answers) == 1, "one request, several answers: " + " | ".join(
                        a.text()[:300] for a in answers
                    )
        self.healthy()
        return answers

    def healthy(self) -> None:
        with Connection(self.url) as conn:
            conn.send(HEALTH)
            health = conn.read_answer()
        assert health.status == 200, f"the service is not healthy after the case: {health.text()}"

    def check(self, answer: Answer, method: str) -> None:
        self.answers += 1
        text = answer.text()
        leaked = [s for s in self.secrets if s and s in text]
        assert not leaked, f"an answer showed {len(leaked)} secret value(s)"
        if method == "HEAD" or answer.status in (204, 304):
            assert answer.status < 500, text
            return
        if method == "OPTIONS" and answer.status == 200 and not answer.body:
            return  # Flask's automatic OPTIONS answer: the Allow header, no body
        content_type = answer.header("Content-Type") or ""
        assert content_type.startswith("application/json"), f"not JSON:\n{text[:800]}"
        try:
            body = json.loads(answer.body)
        except ValueError:
            raise AssertionError(f"not JSON:\n{text[:800]}") from None
        assert isinstance(body, dict), text
        if answer.status < 400:
            assert body.get("code") == 0 and "data" in body, text
            return
        slug = body.get("error")
        assert slug in ERRORS, f"undocumented error slug {slug!r}:\n{text[:800]}"
        assert isinstance(body.get("code"), int) and body["code"] == ERRORS[slug][1], text
        assert isinstance(body.get("message"), str) and body["message"], text
        status = ERRORS[slug][0]
        assert answer.status == status or (
            slug == "bad_request" and answer.status in PROTOCOL_STATUSES
        ), f"{slug} should be {status}:\n{text[:800]}"
        if answer.status >= 500:
            assert slug in OUTAGES, f"a server error for client input:\n{text[:800]}"

    def new_log(self) -> str:
        if not self.log.exists():
            return ""
        with self.log.open("rb") as handle:
            handle.seek(self.log_offset)
            data = handle.read()
        self.log_offset += len(data)
        return data.decode("utf-8", "replace")

    def check_log(self) -> None:
        text = self.new_log()
        bad = error_lines(text)
        assert not bad, "a worker logged an error:\n" + "\n".join(bad[:20]) + "\n" + text[-3000:]


def error_lines(log: str) -> list[str]:
    return [
        line
        for line in log.splitlines()
        if "Traceback" in line or " ERROR " in line or "[ERROR]" in line
    ]
