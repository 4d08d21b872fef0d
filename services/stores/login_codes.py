"""What each wx.login code became, for as long as the code lives.

A client that times out posts the same code again; WeChat would answer 40163
(code been used). The ledger makes the retry return the first attempt's
session instead, and sends the code to WeChat once even when copies arrive at
several workers at the same moment. Its states, one Redis string per code
(keyed by a hash, so codes are not stored):

    pending     an attempt owns the code (expires if that attempt dies)
    exchanged   WeChat answered, but the login could not finish (say, the
                database was down); the result is kept sealed so a retry can
                finish it without WeChat
    session     the login finished: the code maps to this session's token
    error       WeChat rejected the code; a retry gets the same answer
    unreadable  an entry this code cannot parse (written by something else);
                an attempt takes it over and lets WeChat decide
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass

import redis

from services.crypto.sealing import Sealer
from services.stores.redis import Keys, compare_and_set, guard, load_script
from services.wechat import Code2Session, OAuthLogin

# What a code was exchanged for, by the kind of app.
EXCHANGES: dict[str, type[Code2Session] | type[OAuthLogin]] = {
    "code2session": Code2Session,
    "oauth": OAuthLogin,
}


@dataclass(frozen=True)
class CodeState:
    kind: str  # pending | exchanged | session | error | unreadable
    value: str  # nonce | sealed exchange | token | error slug | ""
    raw: str


class LoginCodeLedger:
    def __init__(
        self,
        client: redis.Redis,
        *,
        keys: Keys,
        sealer: Sealer,
        appid: str,
        replay_ttl: int,
        pending_ttl: float,
    ) -> None:
        self.redis = client
        self.keys = keys
        self.sealer = sealer
        self.appid = appid
        self.replay_ttl = replay_ttl
        self.pending_ttl = pending_ttl
        self._compare_and_set = load_script(client, "compare_and_set")

    def claim(self, js_code: str) -> CodeState | None:
        """Own the code if nobody has it yet."""
        state = _state("pending", secrets.token_hex(8))
        with guard(self.redis):
            owned = self.redis.set(
                self._key(js_code), state.raw, nx=True, px=int(self.pending_ttl * 1000)
            )
        return state if owned else None

    def read(self, js_code: str) -> CodeState | None:
        with guard(self.redis):
            raw = self.redis.get(self._key(js_code))
        if raw is None:
            return None
        try:
            kind, value = next(iter(json.loads(raw).items()))
        except (ValueError, StopIteration, AttributeError):
            return CodeState("unreadable", "", raw)
        if kind not in {"pending", "exchanged", "session", "error"} or not isinstance(value, str):
            return CodeState("unreadable", "", raw)
        return CodeState(kind, value, raw)

    def take_over(self, js_code: str, current: CodeState) -> CodeState | None:
        """Own a code whose entry is still `current` (a login waiting to be
        finished, or an unreadable entry)."""
        state = _state("pending", secrets.token_hex(8))
        ms = int(self.pending_ttl * 1000)
        return state if self._swap(js_code, current.raw, state.raw, ms) else None

    def release(self, js_code: str, pending: CodeState) -> None:
        """Give the code back untouched (WeChat never accepted it)."""
        self._swap(js_code, pending.raw, "", 0)

    def record_exchange(self, js_code: str, result: Code2Session | OAuthLogin) -> None:
        kind = next(name for name, cls in EXCHANGES.items() if isinstance(result, cls))
        sealed = self.sealer.seal(json.dumps({kind: asdict(result)}, ensure_ascii=False))
        self._set(js_code, _state("exchanged", sealed))

    def open_exchange(self, exchanged: CodeState) -> Code2Session | OAuthLogin | None:
        """The sealed exchange, or None if it was sealed under another SECRET_KEY."""
        opened = self.sealer.open(exchanged.value)
        if opened is None:
            return None
        ((kind, fields),) = json.loads(opened).items()
        return EXCHANGES[kind](**fields)

    def record_session(self, js_code: str, token: str) -> None:
        self._set(js_code, _state("session", token))

    def record_rejection(self, js_code: str, slug: str) -> None:
        self._set(js_code, _state("error", slug))

    def _set(self, js_code: str, state: CodeState) -> None:
        with guard(self.redis):
            self.redis.set(self._key(js_code), state.raw, ex=self.replay_ttl)

    def _swap(self, js_code: str, expected: str, new: str, ms: int) -> bool:
        with guard(self.redis):
            return compare_and_set(self._compare_and_set, self._key(js_code), expected, new, ms)

    def _key(self, js_code: str) -> str:
        digest = hashlib.sha256(f"{self.appid}:{js_code}".encode()).hexdigest()
        return self.keys.login_code(digest)


def _state(kind: str, value: str) -> CodeState:
    return CodeState(kind, value, json.dumps({kind: value}, separators=(",", ":")))
