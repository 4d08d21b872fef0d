"""Binding the user's profile and phone number from what WeChat hands the
mini program: encryptedData (profile, legacy phone) or a phone number code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services import errors
from services.crypto.opendata import OpenDataCipher
from services.stores.access_token import AccessTokenStore
from services.stores.session_keys import SessionKeyRing
from services.stores.sessions import SessionStore
from services.stores.users import UserRecord, UserStore
from services.wechat import WeChatClient

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
        users: UserStore,
        sessions: SessionStore,
        session_keys: SessionKeyRing,
        cipher: OpenDataCipher,
        wechat: WeChatClient,
        access_token: AccessTokenStore,
    ) -> None:
        self.users = users
        self.sessions = sessions
        self.session_keys = session_keys
        self.cipher = cipher
        self.wechat = wechat
        self.access_token = access_token

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
        # Every live session of the user shows the new profile from now on.
        self.sessions.sync_profile(record.id, record.profile, record.profile_version)
        return record.profile
