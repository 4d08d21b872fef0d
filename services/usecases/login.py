"""A login code in, a server-side session out; and sessions ended.

A mini program's code (wx.login) is exchanged at jscode2session; an official
account's web-login code (网页授权) at /sns/oauth2/access_token. Retries of
the same code are idempotent (services/stores/login_codes.py): WeChat sees
each code once, and every copy of a request gets the first one's answer.
Parallel logins of one user in one app share one session within
LOGIN_DEDUP_WINDOW (services/stores/sessions.py).
"""

from __future__ import annotations

import logging
import time

from services import errors
from services.apps import App, Apps
from services.stores.accounts import AccountRecord, AccountStore, LoggedIn
from services.stores.login_codes import CodeState
from services.stores.rate_limits import RateLimit, Windows
from services.stores.session_keys import CheckSessionCache, RingEntry, SessionKeyRing
from services.stores.sessions import IssuedSession, SessionStore
from services.telemetry import NO_TELEMETRY, Telemetry
from services.usecases.profile import profile_changes
from services.usecases.publishing import Publisher
from services.wechat import Code2Session, OAuthLogin

log = logging.getLogger(__name__)

# WeChat's verdicts on the code itself: a retry of the same code gets the same.
CODE_VERDICTS = (errors.CodeInvalid, errors.CodeUsed, errors.CodeBlocked)
Exchanged = Code2Session | OAuthLogin


class LoginService:
    def __init__(
        self,
        *,
        apps: Apps,
        accounts: AccountStore,
        sessions: SessionStore,
        session_keys: SessionKeyRing,
        client_limit: RateLimit,
        openid_limit: Windows,
        wechat_limit: RateLimit,
        publisher: Publisher,
        checked: CheckSessionCache,
        poll: float = 0.05,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self.apps = apps
        self.telemetry = telemetry
        self.accounts = accounts
        self.sessions = sessions
        self.session_keys = session_keys
        self.client_limit = client_limit
        self.openid_limit = openid_limit
        self.wechat_limit = wechat_limit
        self.publisher = publisher
        self.checked = checked
        self.poll = poll

    def login(self, app: App, code: str, client: str) -> IssuedSession:
        """`client`: where the request came from (its address), for the
        per-client limit, counted before anything else happens."""
        try:
            issued, outcome = self._login(app, code, client)
        except errors.ServiceError as exc:
            self.telemetry.login(exc.slug)
            raise
        except Exception:
            self.telemetry.login("internal_error")
            raise
        self.telemetry.login(outcome)
        return issued

    def _login(self, app: App, code: str, client: str) -> tuple[IssuedSession, str]:
        """The session, and how it came about: new, shared or replayed."""
        self.client_limit.hit(app.appid, client)
        ledger = app.login_codes
        deadline = time.monotonic() + ledger.pending_ttl
        while time.monotonic() < deadline:
            claimed = ledger.claim(code)
            if claimed is not None:
                return _fresh(self._exchange(app, code, claimed))
            state = ledger.read(code)
            if state is None:
                continue  # the attempt that had it gave it back: claim it again
            if state.kind == "session":
                return self._replay(state.value), "replayed"
            if state.kind == "error":
                raise errors.by_slug(state.value)()
            if state.kind == "exchanged" and ledger.take_over(code, state):
                return _fresh(self._resume(app, code, state))
            if state.kind == "unreadable" and (owned := ledger.take_over(code, state)):
                return _fresh(self._exchange(app, code, owned))
            time.sleep(self.poll)  # another worker is exchanging this very code
        raise errors.WeChatTimeout()

    def _exchange(self, app: App, code: str, claimed: CodeState) -> IssuedSession:
        try:
            exchanged = (
                app.wechat.code2session(code)
                if app.is_miniprogram
                else app.wechat.oauth_login(code)
            )
        except CODE_VERDICTS as exc:
            app.login_codes.record_rejection(code, exc.slug)
            raise
        except Exception:
            app.login_codes.release(code, claimed)
            raise
        return self._finish(app, code, exchanged)

    def _resume(self, app: App, code: str, exchanged: CodeState) -> IssuedSession:
        """Finish a login whose exchange succeeded on an earlier attempt."""
        result = app.login_codes.open_exchange(exchanged)
        if result is None:  # sealed under a SECRET_KEY that has changed since
            app.login_codes.record_rejection(code, errors.CodeUsed.slug)
            raise errors.CodeUsed()
        return self._finish(app, code, result)

    def _finish(self, app: App, code: str, exchanged: Exchanged) -> IssuedSession:
        """Everything after WeChat said yes. If it fails, the exchange is kept
        so that the same code, posted again, can finish the login.

        The per-user limit is counted by the session script, with the
        session_key (one round trip): after the identity is read, so a
        refused login has read its identity (and an official account's may
        have filled in its profile from WeChat's), but no session is made
        and no session_key kept."""
        try:
            logged = self.accounts.log_in(app.appid, exchanged.openid, exchanged.unionid)
            account, session_key = self._settle(logged, exchanged)
            issued = self.sessions.issue(
                identity_id=logged.identity.id,
                account_id=account.id,
                appid=app.appid,
                profile=account.profile,
                version=account.profile_version,
                session_key=session_key,
                limit=self.openid_limit,
            )
        except Exception:
            app.login_codes.record_exchange(code, exchanged)
            raise
        app.login_codes.record_session(code, issued.token)
        log.info(
            "login: account %s, identity %s, %s session",
            account.id,
            logged.identity.id,
            "shared" if issued.reused else "new",
        )
        return issued

    def _settle(
        self, logged: LoggedIn, exchanged: Exchanged
    ) -> tuple[AccountRecord, RingEntry | None]:
        """What the login brought besides who: a session_key (to record with
        the session), or an official account's profile; and two accounts may
        have become one."""
        self.publisher.merged(logged)
        account = logged.account
        if isinstance(exchanged, Code2Session):
            return account, self.session_keys.entry(exchanged.session_key)
        if exchanged.profile and (changes := self._userinfo(exchanged, account)):
            account = self.accounts.update_profile(account.id, changes)
            self.publisher.publish(account)
        return account, None

    @staticmethod
    def _userinfo(exchanged: OAuthLogin, account: AccountRecord) -> dict:
        """/sns/userinfo's profile fills what the account does not have yet."""
        try:
            return profile_changes(exchanged.profile or {}, account.profile, fill_only=True)
        except errors.PayloadInvalid:
            log.warning("WeChat /sns/userinfo answered a profile with odd fields; ignored")
            return {}

    def _replay(self, token: str) -> IssuedSession:
        """The same code again: the session it made, if it is still alive."""
        issued = self.sessions.reissue(token)
        if issued is None:
            raise errors.CodeUsed()  # its session has ended since: log in afresh
        return issued

    def session_key_valid(self, app: App, identity_id: int) -> bool:
        """Whether WeChat still accepts the newest session_key we hold for the
        identity: if not, data the client encrypts now will not open here
        until it calls wx.login again. An official account has none."""
        identity = self.accounts.identity(identity_id)
        if identity is None:
            raise errors.Unauthorized()
        session_key = self.session_keys.newest(identity_id)
        if session_key is None or not app.is_miniprogram:
            return False
        known = self.checked.get(identity_id, session_key)
        if known is not None:
            return known  # asked a moment ago: WeChat's answer has not changed
        self.wechat_limit.hit(str(identity.account_id))
        valid = app.access_token.call(
            lambda access_token: app.wechat.check_session(
                access_token, identity.openid, session_key
            )
        )
        self.checked.put(identity_id, session_key, valid)
        return valid

    def logout(self, token: str) -> int:
        """End one session; how many were live (0 or 1)."""
        return int(self.sessions.revoke(token))

    def logout_everywhere(self, account_id: int) -> int:
        """End every session of the account, in every app, at once on every
        worker and instance."""
        return sum(
            self.sessions.revoke_identity(identity.id)
            for identity in self.accounts.identities(account_id)
        )

    def revoke_user(self, appid: str, openid: str) -> tuple[int, int]:
        """For operators: end every session of the account of this identity.
        Returns (account id, sessions ended)."""
        identity = self.accounts.find_identity(appid, openid)
        if identity is None:
            raise errors.NotFound("No user has that openid in that app.")
        return identity.account_id, self.logout_everywhere(identity.account_id)


def _fresh(issued: IssuedSession) -> tuple[IssuedSession, str]:
    """A login that exchanged its code: a new session, or the user's live one
    shared by de-duplication."""
    return issued, "shared" if issued.reused else "new"
