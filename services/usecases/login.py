"""wx.login code in, server-side session out; and sessions ended.

Retries of the same code are idempotent (services/stores/login_codes.py):
WeChat sees each code once, and every copy of a request gets the first one's
answer. Parallel logins of one user with different codes share one session
within LOGIN_DEDUP_WINDOW (services/stores/sessions.py).
"""

from __future__ import annotations

import logging
import time

from services import errors
from services.stores.access_token import AccessTokenStore
from services.stores.login_codes import CodeState, LoginCodeLedger
from services.stores.rate_limits import OpenidRateLimit
from services.stores.session_keys import SessionKeyRing
from services.stores.sessions import IssuedSession, SessionStore
from services.stores.users import UserStore
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
        access_token: AccessTokenStore,
        login_codes: LoginCodeLedger,
        openid_limit: OpenidRateLimit,
        poll: float = 0.05,
    ) -> None:
        self.wechat = wechat
        self.users = users
        self.sessions = sessions
        self.session_keys = session_keys
        self.access_token = access_token
        self.login_codes = login_codes
        self.openid_limit = openid_limit
        self.poll = poll

    def login(self, js_code: str) -> IssuedSession:
        ledger = self.login_codes
        deadline = time.monotonic() + ledger.pending_ttl
        while time.monotonic() < deadline:
            claimed = ledger.claim(js_code)
            if claimed is not None:
                return self._exchange(js_code, claimed)
            state = ledger.read(js_code)
            if state is None:
                continue  # the attempt that had it gave it back: claim it again
            if state.kind == "session":
                return self._replay(state.value)
            if state.kind == "error":
                raise errors.by_slug(state.value)()
            if state.kind == "exchanged" and ledger.take_over(js_code, state):
                return self._resume(js_code, state)
            if state.kind == "unreadable" and (owned := ledger.take_over(js_code, state)):
                return self._exchange(js_code, owned)
            time.sleep(self.poll)  # another worker is exchanging this very code
        raise errors.WeChatTimeout()

    def _exchange(self, js_code: str, claimed: CodeState) -> IssuedSession:
        try:
            exchanged = self.wechat.code2session(js_code)
        except CODE_VERDICTS as exc:
            self.login_codes.record_rejection(js_code, exc.slug)
            raise
        except Exception:
            self.login_codes.release(js_code, claimed)
            raise
        return self._finish(js_code, exchanged)

    def _resume(self, js_code: str, exchanged: CodeState) -> IssuedSession:
        """Finish a login whose exchange succeeded on an earlier attempt."""
        result = self.login_codes.open_exchange(exchanged)
        if result is None:  # sealed under a SECRET_KEY that has changed since
            self.login_codes.record_rejection(js_code, errors.CodeUsed.slug)
            raise errors.CodeUsed()
        return self._finish(js_code, result)

    def _finish(self, js_code: str, exchanged: Code2Session) -> IssuedSession:
        """Everything after WeChat said yes. If it fails, the exchange is kept
        so that the same code, posted again, can finish the login."""
        try:
            self.openid_limit.hit(exchanged.openid)
            user = self.users.upsert_login(exchanged.openid, exchanged.unionid)
            self.session_keys.record(user.id, exchanged.session_key)
            issued = self.sessions.issue(user.id, user.profile, user.profile_version)
        except Exception:
            self.login_codes.record_exchange(js_code, exchanged)
            raise
        self.login_codes.record_session(js_code, issued.token)
        log.info("login: user %s, %s session", user.id, "shared" if issued.reused else "new")
        return issued

    def _replay(self, token: str) -> IssuedSession:
        """The same code again: the session it made, if it is still alive."""
        issued = self.sessions.reissue(token)
        if issued is None:
            raise errors.CodeUsed()  # its session has ended since: log in afresh
        return issued

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
        return self.access_token.call(
            lambda access_token: self.wechat.check_session(access_token, user.openid, session_key)
        )

    def logout(self, token: str) -> int:
        """End one session; how many were live (0 or 1)."""
        return int(self.sessions.revoke(token))

    def logout_everywhere(self, user_id: int) -> int:
        """End every session of the user, at once on every worker and instance."""
        return self.sessions.revoke_user(user_id)

    def revoke_user(self, openid: str) -> tuple[int, int]:
        """For operators: end every session of the user with this openid.
        Returns (user id, sessions ended)."""
        user_id = self.users.find_id(openid)
        if user_id is None:
            raise errors.NotFound("No user has that openid.")
        return user_id, self.sessions.revoke_user(user_id)
