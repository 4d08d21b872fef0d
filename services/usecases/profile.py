"""The user's profile: what the user types on a profile page (checked by
WeChat's content security first), and binding it and the phone number from
what WeChat hands the mini program (encryptedData or a phone number code)."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from services import errors
from services.crypto.opendata import OpenDataCipher
from services.stores.access_token import AccessTokenStore
from services.stores.session_keys import SessionKeyRing
from services.stores.sessions import SessionStore
from services.stores.users import UserRecord, UserStore
from services.wechat import WeChatClient

# What a profile page may set with PUT /user/profile, and the longest text
# (in characters, not bytes) each may hold. The avatar is uploaded instead.
EDITABLE_TEXT = {"nickName": 32, "city": 64, "province": 64, "country": 64}
EDITABLE = frozenset({*EDITABLE_TEXT, "gender"})
# Invisible characters that change how text around them reads: line and
# paragraph separators, bidirectional overrides and isolates.
DECEPTIVE = frozenset(
    {"\u2028", "\u2029", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))}
)
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
    value = value.strip()
    limit = EDITABLE_TEXT[name]
    if len(value) > limit:
        raise errors.InvalidField(f"{name} is longer than {limit} characters.")
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


def profile_changes(payload: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """The fields to store. Blanks never erase: since 2023 WeChat sends gender
    0 and empty region fields for everyone."""
    changes: dict[str, Any] = {}
    for name, limit in PROFILE_TEXT.items():
        value = payload.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > limit:
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
    return changes


def phone_changes(payload: Mapping[str, Any]) -> dict[str, str]:
    changes = {}
    for name, limit in PHONE_TEXT.items():
        value = payload.get(name)
        # The docs type countryCode as a number in one place and a string in another.
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value or len(value) > limit:
            raise errors.PayloadInvalid(f"{name} in the data is missing or not a short string.")
        changes[name] = value
    return changes


def unionid_of(payload: Mapping[str, Any]) -> str | None:
    unionid = payload.get("unionId")
    if unionid is None:
        return None
    if not isinstance(unionid, str) or not 0 < len(unionid) <= 64:
        raise errors.PayloadInvalid("unionId in the data is not a WeChat id.")
    return unionid


class ProfileService:
    def __init__(
        self,
        *,
        users: UserStore,
        sessions: SessionStore,
        session_keys: SessionKeyRing,
        cipher: OpenDataCipher,
        wechat: WeChatClient,
        access_token: AccessTokenStore,
        review_policy: str = "reject",
    ) -> None:
        self.users = users
        self.sessions = sessions
        self.session_keys = session_keys
        self.cipher = cipher
        self.wechat = wechat
        self.access_token = access_token
        self.review_policy = review_policy

    def update_profile(self, user_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
        """PUT /user/profile: every changed text passes WeChat's content
        security (msgSecCheck v2, scene 1) before anything is stored."""
        edits = profile_edits(fields)
        user = self._user(user_id)
        for name, value in edits.items():
            if name in EDITABLE_TEXT and value and value != user.profile.get(name):
                self.check_text(user, name, value)
        return self._save(user, edits)

    def check_text(self, user: UserRecord, field: str, text: str) -> None:
        verdict = self.access_token.call(
            lambda access_token: self.wechat.msg_sec_check(
                access_token, content=text, openid=user.openid
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

    def bind_info(
        self,
        user_id: int,
        encrypted_data: str,
        iv: str,
        *,
        raw_data: str | None = None,
        signature: str | None = None,
    ) -> dict[str, Any]:
        user = self._user(user_id)
        payload = self._open(user, encrypted_data, iv, raw_data=raw_data, signature=signature)
        changes = profile_changes(payload, user.profile)
        return self._save(user, changes, unionid=unionid_of(payload))

    def bind_phone_code(self, user_id: int, code: str) -> dict[str, Any]:
        user = self._user(user_id)
        info = self.access_token.call(
            lambda access_token: self.wechat.get_phone_number(access_token, code, user.openid)
        )
        return self._save(
            user,
            {
                "phoneNumber": info.phone_number,
                "purePhoneNumber": info.pure_phone_number,
                "countryCode": info.country_code,
            },
        )

    def bind_phone_data(self, user_id: int, encrypted_data: str, iv: str) -> dict[str, Any]:
        user = self._user(user_id)
        return self._save(user, phone_changes(self._open(user, encrypted_data, iv)))

    def _user(self, user_id: int) -> UserRecord:
        user = self.users.get(user_id)
        if user is None:
            raise errors.Unauthorized()
        return user

    def _open(self, user: UserRecord, encrypted_data: str, iv: str, **signed: Any) -> dict:
        keys = [recent.session_key for recent in self.session_keys.recent(user.id)]
        return self.cipher.open(encrypted_data, iv, keys, openid=user.openid, **signed)

    def _save(
        self, user: UserRecord, changes: Mapping[str, Any], *, unionid: str | None = None
    ) -> dict[str, Any]:
        if not changes and unionid is None:
            return user.profile
        record = self.users.update_profile(user.id, changes, unionid=unionid)
        return publish(self.sessions, record)


def publish(sessions: SessionStore, record: UserRecord) -> dict[str, Any]:
    """Every live session of the user shows this profile from now on."""
    sessions.sync_profile(record.id, record.profile, record.profile_version)
    return record.profile
