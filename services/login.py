"""wx.login code in, server-side session out."""

from __future__ import annotations

import logging

from services import errors
from services.access_token import AccessTokenProvider
from services.session_keys import SessionKeyRing
from services.sessions import IssuedSession, SessionStore
from services.users import UserStore
from services.wechat import WeChatClient

log = logging.getLogger(__name__)


class LoginService:
    def __init__(
        self,
        *,
        wechat: WeChatClient,
        users: UserStore,
        sessions: SessionStore,
        session_keys: SessionKeyRing,
        tokens: AccessTokenProvider,
    ) -> None:
        self.wechat = wechat
        self.users = users
        self.sessions = sessions
        self.session_keys = session_keys
        self.tokens = tokens

    def login(self, js_code: str) -> IssuedSession:
        exchanged = self.wechat.code2session(js_code)
        user = self.users.upsert_login(exchanged.openid, exchanged.unionid)
        self.session_keys.record(user.id, exchanged.session_key)
        issued = self.sessions.issue(user.id, user.profile, user.profile_version)
        log.info("login: user %s, %s session", user.id, "shared" if issued.reused else "new")
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
        return self.tokens.call(
            lambda token: self.wechat.check_session(token, user.openid, session_key)
        )
