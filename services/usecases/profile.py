"""The user's profile: what the user types on a profile page (checked by
WeChat's content security first), and binding it and the phone number from
what WeChat hands the mini program (encryptedData or a phone number code)."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from services import errors
from services.apps import App
from services.stores.accounts import AccountRecord, AccountStore, IdentityRecord
from services.stores.rate_limits import RateLimit
from services.stores.session_keys import SessionKeyRing
from services.usecases.content import ContentSecurity
from services.usecases.publishing import Publisher

# What a profile page may set with PUT /user/profile, and the longest text
# (in characters, not bytes) each may hold. The avatar is uploaded instead.
EDITABLE_TEXT = {"nickName": 32, "city": 64, "province": 64, "country": 64}
EDITABLE = frozenset({*EDITABLE_TEXT, "gender"})
# Invisible characters that change how text around them reads: line and
# paragraph separators, bidirectional overrides and isolates.
DECEPTIVE = frozenset(
    {"\u2028", "\u2029", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))}
)
# Since 2022 getUserProfile answers new mini program versions with this
# placeholder: a grey avatar, "微信用户" and is_demote. It must never replace a
# profile the user really bound.
ANONYMOUS_NICKNAME = "微信用户"
GREY_AVATAR = (
    "https://thirdwx.qlogo.cn/mmopen/vi_32/POgEwh4mIHO4nibH0KlMECNjjGxQUq24ZEaGT4poC6icRicc"
    "VGKSyXwibcPq4BWmiaIGuG1icwxaQX6grC9VemZoJ8rg/132"
)

# WeChat's field names, with the longest value the users table holds.
PROFILE_TEXT = {
    "nickName": 255,
    "avatarUrl": 1024,
    "city": 128,
    "province": 128,
    "country": 128,
    "language": 32,
}
PHONE_TEXT = {"phoneNumber": 32, "purePhoneNumber": 32, "countryCode": 8}


def profile_edits(fields: Mapping[str, Any]) -> dict[str, Any]:
    """What a profile page sent, checked: text has a bounded length in
    characters and no control or deceptive characters (emoji and every other
    4-byte character are kept); an empty region field clears it."""
    unknown = sorted(set(fields) - EDITABLE)
    if "avatarUrl" in unknown:
        raise errors.InvalidField("avatarUrl cannot be set: upload the image to POST /user/avatar.")
    if unknown:
        raise errors.InvalidField(
            f"{unknown[0]} cannot be set here; editable: {', '.join(sorted(EDITABLE))}."
        )
    if not fields:
        raise errors.InvalidField(f"Send at least one of {', '.join(sorted(EDITABLE))}.")
    edits: dict[str, Any] = {}
    for name, value in fields.items():
        edits[name] = _gender(value) if name == "gender" else _text(name, value)
    if "nickName" in edits and edits["nickName"] is None:
        raise errors.InvalidField("nickName must not be empty.")
    return edits


def _text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise errors.InvalidField(f"{name} must be a string.")
    limit = EDITABLE_TEXT[name]
    if len(value) > limit:  # as sent, trimmed or not (the OpenAPI document's maxLength)
        raise errors.InvalidField(f"{name} is longer than {limit} characters.")
    value = value.strip()
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cs", "Co", "Cn") or char in DECEPTIVE:
            raise errors.InvalidField(f"{name} contains a control or invisible character.")
    return value or None


def _gender(value: Any) -> int:
    # Form bodies carry "1"; WeChat's own values are 0 (unknown), 1 and 2.
    if isinstance(value, str) and value.strip() in ("0", "1", "2"):
        return int(value)
    if isinstance(value, bool) or value not in (0, 1, 2):
        raise errors.InvalidField("gender must be 0, 1 or 2.")
    return value


def is_anonymous(payload: Mapping[str, Any]) -> bool:
    return (
        payload.get("is_demote") is True
        or payload.get("nickName") == ANONYMOUS_NICKNAME
        or payload.get("avatarUrl") == GREY_AVATAR
    )


def has_real_profile(profile: Mapping[str, Any]) -> bool:
    return profile.get("nickName") not in (None, "", ANONYMOUS_NICKNAME) or profile.get(
        "avatarUrl"
    ) not in (None, "", GREY_AVATAR)


def profile_changes(
    payload: Mapping[str, Any], current: Mapping[str, Any], *, fill_only: bool = False
) -> dict[str, Any]:
    """The fields to store. Blanks never erase: since 2023 WeChat sends gender
    0 and empty region fields for everyone. With fill_only, only fields the
    profile does not have yet."""
    changes: dict[str, Any] = {}
    for name, limit in PROFILE_TEXT.items():
        value = payload.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > limit or not storable(value):
            raise errors.PayloadInvalid(f"{name} in the data is not a string of at most {limit}.")
        if value:
            changes[name] = value
    gender = payload.get("gender")
    if gender is not None:
        if isinstance(gender, bool) or gender not in (0, 1, 2):
            raise errors.PayloadInvalid("gender in the data is not 0, 1 or 2.")
        if gender:
            changes["gender"] = gender
    if is_anonymous(payload) and has_real_profile(current):
        return {}
    if fill_only:
        return {name: value for name, value in changes.items() if current.get(name) is None}
    return changes


def phone_changes(payload: Mapping[str, Any]) -> dict[str, str]:
    changes = {}
    for name, limit in PHONE_TEXT.items():
        value = payload.get(name)
        # The docs type countryCode as a number in one place and a string in another.
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value or len(value) > limit or not storable(value):
            raise errors.PayloadInvalid(f"{name} in the data is missing or not a short string.")
        changes[name] = value
    return changes


def unionid_of(payload: Mapping[str, Any]) -> str | None:
    unionid = payload.get("unionId")
    if unionid is None:
        return None
    if not isinstance(unionid, str) or not 0 < len(unionid) <= 64 or not storable(unionid):
        raise errors.PayloadInvalid("unionId in the data is not a WeChat id.")
    return unionid


def storable(value: str) -> bool:
    """Text every supported database keeps as sent: encodable as UTF-8 (a
    lone surrogate, from a JSON \\u escape, is not) and without NUL (which
    PostgreSQL refuses in text). WeChat never sends either."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class ProfileService:
    def __init__(
        self,
        *,
        accounts: AccountStore,
        session_keys: SessionKeyRing,
        content: ContentSecurity,
        publisher: Publisher,
        wechat_limit: RateLimit,
    ) -> None:
        self.accounts = accounts
        self.session_keys = session_keys
        self.content = content
        self.publisher = publisher
        self.wechat_limit = wechat_limit

    def update_profile(self, identity_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
        """PUT /user/profile: every changed text passes WeChat's content
        security (msgSecCheck v2, scene 1) before anything is stored."""
        edits = profile_edits(fields)
        identity, account = self._who(identity_id)
        for name, value in edits.items():
            if name in EDITABLE_TEXT and value and value != account.profile.get(name):
                self.content.check_text(identity, name, value)
        return self._save(account, edits)

    def bind_info(
        self,
        app: App,
        identity_id: int,
        encrypted_data: str,
        iv: str,
        *,
        raw_data: str | None = None,
        signature: str | None = None,
    ) -> dict[str, Any]:
        identity, account = self._who(identity_id)
        payload = self._open(
            app, identity, encrypted_data, iv, raw_data=raw_data, signature=signature
        )
        changes = profile_changes(payload, account.profile)
        unionid = unionid_of(payload)
        if unionid is not None:
            logged = self.accounts.attach_unionid(identity.id, unionid)
            self.publisher.merged(logged)
            account = logged.account
        return self._save(account, changes)

    def bind_phone_code(self, app: App, identity_id: int, code: str) -> dict[str, Any]:
        identity, account = self._who(identity_id)
        self.wechat_limit.hit(str(account.id))
        info = app.access_token.call(
            lambda access_token: app.wechat.get_phone_number(access_token, code, identity.openid)
        )
        return self._save(
            account,
            {
                "phoneNumber": info.phone_number,
                "purePhoneNumber": info.pure_phone_number,
                "countryCode": info.country_code,
            },
        )

    def bind_phone_data(
        self, app: App, identity_id: int, encrypted_data: str, iv: str
    ) -> dict[str, Any]:
        identity, account = self._who(identity_id)
        return self._save(account, phone_changes(self._open(app, identity, encrypted_data, iv)))

    def _who(self, identity_id: int) -> tuple[IdentityRecord, AccountRecord]:
        """The identity and its account (after a merge, the one that is left)."""
        identity = self.accounts.identity(identity_id)
        account = self.accounts.get(identity.account_id) if identity else None
        if identity is None or account is None:
            raise errors.Unauthorized()
        return identity, account

    def _open(
        self, app: App, identity: IdentityRecord, encrypted_data: str, iv: str, **signed: Any
    ) -> dict:
        keys = [recent.session_key for recent in self.session_keys.recent(identity.id)]
        return app.cipher.open(encrypted_data, iv, keys, openid=identity.openid, **signed)

    def _save(self, account: AccountRecord, changes: Mapping[str, Any]) -> dict[str, Any]:
        if not changes:
            return account.profile
        return self.publisher.publish(self.accounts.update_profile(account.id, changes))
