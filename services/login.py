"""wx.login code in, server-side session out.

Retries of the same code are idempotent (services/login_codes.py): WeChat sees
each code once, and every copy of a request gets the first one's answer.
Parallel logins of one user with different codes share one session within
LOGIN_DEDUP_WINDOW (services/sessions.py).
"""

from __future__ import annotations

import logging
import time

from services import errors
from services.access_token import AccessTokenProvider
from services.login_codes import CodeState, LoginCodes
from services.rate_limits import OpenidRateLimit
from services.session_keys import SessionKeyRing
from services.sessions import IssuedSession, SessionStore
from services.users import UserStore
from services.wechat import Code2Session, WeChatClient

log = logging.getLogger(__name__)

# WeChat's verdicts on the code itself: a retry of the same code gets the same.
CODE_VERDICTS = (errors.CodeInvalid, errors.CodeUsed, errors.CodeBlocked)


class LoginService:
    def __init__(
        self,
        *,
        wechat: WeChatClient,
        users: UserStore,
        sessions: SessionStore,
        session_keys: SessionKeyRing,
        tokens: AccessTokenProvider,
        codes: LoginCodes,
        limit: OpenidRateLimit,
        poll: float = 0.05,
    ) -> None:
        self.wechat = wechat
        self.users = users
        self.sessions = sessions
        self.session_keys = session_keys
        self.tokens = tokens
        self.codes = codes
        self.limit = limit
        self.poll = poll

    def login(self, js_code: str) -> IssuedSession:
        deadline = time.monotonic() + self.codes.pending_ttl
        while time.monotonic() < deadline:
            claimed = self.codes.claim(js_code)
            if claimed is not None:
                return self._exchange(js_code, claimed)
            state = self.codes.read(js_code)
            if state is None:
                continue  # the attempt that had it gave it back: claim it again
            if state.kind == "session":
                return self._replay(state.value)
            if state.kind == "error":
                raise errors.by_slug(state.value)()
            if state.kind == "exchanged" and self.codes.take_over(js_code, state):
                return self._resume(js_code, state)
            time.sleep(self.poll)  # another worker is exchanging this very code
        raise errors.WeChatTimeout()

    def _exchange(self, js_code: str, claimed: CodeState) -> IssuedSession:
        try:
            exchanged = self.wechat.code2session(js_code)
        except CODE_VERDICTS as exc:
            self.codes.rejected(js_code, exc.slug)
            raise
        except Exception:
            self.codes.release(js_code, claimed)
            raise
        return self._finish(js_code, exchanged)

    def _resume(self, js_code: str, state: CodeState) -> IssuedSession:
        """Finish a login whose exchange succeeded on an earlier attempt."""
        exchanged = self.codes.unseal(state)
        if exchanged is None:  # sealed under a SECRET_KEY that has changed since
            self.codes.rejected(js_code, errors.CodeUsed.slug)
            raise errors.CodeUsed()
        return self._finish(js_code, exchanged)

    def _finish(self, js_code: str, exchanged: Code2Session) -> IssuedSession:
        """Everything after WeChat said yes. If it fails, the exchange is kept
        so that the same code, posted again, can finish the login."""
        try:
            self.limit.hit(exchanged.openid)
            user = self.users.upsert_login(exchanged.openid, exchanged.unionid)
            self.session_keys.record(user.id, exchanged.session_key)
            issued = self.sessions.issue(user.id, user.profile, user.profile_version)
        except Exception:
            self.codes.exchanged(js_code, exchanged)
            raise
        self.codes.finished(js_code, issued.sid)
        log.info("login: user %s, %s session", user.id, "shared" if issued.reused else "new")
        return issued

    def _replay(self, sid: str) -> IssuedSession:
        """The same code again: the session it made, if it is still alive."""
        remaining = self.sessions.remaining(sid)
        if remaining is None:
            raise errors.CodeUsed()  # its session has ended since: log in afresh
        return IssuedSession(sid=sid, expires_in=remaining, reused=True)

    def session_key_valid(self, user_id: int) -> bool:
        """Whether WeChat still accepts the newest session_key we hold for the
        user: if not, data the client encrypts now will not open here until
        it calls wx.login again."""
        session_key = self.session_keys.newest(user_id)
        user = self.users.get(user_id)
        if user is None:
            raise errors.Unauthorized()
        if session_key is None:
            return False
        return self.tokens.call(
            lambda token: self.wechat.check_session(token, user.openid, session_key)
        )
