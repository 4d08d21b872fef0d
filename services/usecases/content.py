"""WeChat's content security for what users type and upload: msgSecCheck v2
for text, mediaCheckAsync v2 for images. Both are mini program APIs that need
the user's openid in the app whose access token asks, so an official-account
session is checked through one of the account's mini program identities."""

from __future__ import annotations

from services import errors
from services.apps import App, Apps
from services.stores.accounts import AccountStore, IdentityRecord
from services.stores.rate_limits import RateLimit

# The labels of WeChat's content security, for messages.
LABELS = {
    10001: "advertising",
    20001: "politics",
    20002: "pornography",
    20003: "abuse",
    20006: "illegal activity",
    20008: "fraud",
    20012: "vulgarity",
    20013: "copyright",
    21000: "other",
}


class ContentSecurity:
    def __init__(
        self, apps: Apps, accounts: AccountStore, review_policy: str, wechat_limit: RateLimit
    ) -> None:
        self.apps = apps
        self.accounts = accounts
        self.review_policy = review_policy
        self.wechat_limit = wechat_limit

    def check_text(self, identity: IdentityRecord, field: str, text: str) -> None:
        """Return if WeChat lets the text through; raise why not otherwise."""
        app, checker = self._checker(identity)
        self.wechat_limit.hit(str(identity.account_id))
        verdict = app.access_token.call(
            lambda access_token: app.wechat.msg_sec_check(
                access_token, content=text, openid=checker.openid
            )
        )
        if verdict.suggest == "pass":
            return
        data = {"field": field, "label": verdict.label}
        label = LABELS.get(verdict.label, str(verdict.label))
        if verdict.suggest == "risky":
            raise errors.ContentRisky(
                f"WeChat's content security rates {field} as risky ({label}); it was not saved.",
                data=data,
            )
        if self.review_policy != "accept":
            raise errors.ContentNeedsReview(
                f"WeChat's content security wants {field} reviewed ({label}); it was not saved.",
                data=data,
            )

    def check_image(self, identity: IdentityRecord, media_url: str) -> str:
        """Ask WeChat to check an image; its verdict comes by push. The trace_id."""
        app, checker = self._checker(identity)
        self.wechat_limit.hit(str(identity.account_id))
        return app.access_token.call(
            lambda access_token: app.wechat.media_check_async(
                access_token, media_url=media_url, openid=checker.openid
            )
        )

    def _checker(self, identity: IdentityRecord) -> tuple[App, IdentityRecord]:
        """The identity's own mini program, else another of the account's."""
        app = self.apps.find(identity.appid)
        if app is not None and app.is_miniprogram:
            return app, identity
        for other in self.accounts.identities(identity.account_id):
            candidate = self.apps.find(other.appid)
            if candidate is not None and candidate.is_miniprogram:
                return candidate, other
        raise errors.ContentCheckUnavailable()
