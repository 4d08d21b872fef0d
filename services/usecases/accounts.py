"""Deleting an account, and what WeChat tells us a user withdrew.

Deletion erases everything personal (profile, phone, unionid, avatar files,
session_keys), ends every session at once on every worker and instance, and
frees the openid: a later login starts a fresh, empty account. What is kept:
a row in `deletions` with the old user id, the reason and the time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from services.stores.session_keys import SessionKeyRing
from services.stores.sessions import SessionStore
from services.stores.users import AVATAR_COLUMNS, UserStore
from services.usecases.avatars import AvatarService
from services.usecases.profile import publish

log = logging.getLogger(__name__)

# The columns behind each part of the profile a user can withdraw.
PARTS = {
    "nickName": ("nick_name",),
    "avatar": AVATAR_COLUMNS,
    "phone": ("phone_number", "pure_phone_number", "country_code"),
}
# user_authorization_revoke's RevokeInfo codes (reference §15) for what we
# keep: 6 nickname and avatar, 8 phone number, 19 the nickname keyboard, 20
# the avatar component. The other codes name data this service never stores.
REVOKED = {"6": ("nickName", "avatar"), "8": ("phone",), "19": ("nickName",), "20": ("avatar",)}


class AccountService:
    def __init__(
        self,
        *,
        users: UserStore,
        sessions: SessionStore,
        session_keys: SessionKeyRing,
        avatars: AvatarService,
    ) -> None:
        self.users = users
        self.sessions = sessions
        self.session_keys = session_keys
        self.avatars = avatars

    def delete(self, user_id: int, reason: str) -> bool:
        """Idempotent: False when there was nothing left to delete."""
        # Sessions first: from here on no request sees the account.
        self.sessions.forget_user(user_id)
        deleted = self.users.delete(user_id, reason)
        self.session_keys.forget(user_id)
        if deleted is None:
            return False
        for avatar_hash in {deleted.avatar_hash, deleted.pending_avatar_hash} - {None}:
            self.avatars.withdraw(avatar_hash)
        log.info("deleted user %s (%s)", user_id, reason)
        return True

    def delete_by_openid(self, openid: str, reason: str) -> bool:
        user_id = self.users.find_id(openid)
        return user_id is not None and self.delete(user_id, reason)

    def withdraw(self, openid: str, revoke_info: str) -> bool:
        """user_authorization_revoke: erase what the codes name."""
        parts = {part for code in re.findall(r"\d+", revoke_info) for part in REVOKED.get(code, ())}
        return self.erase(openid, parts)

    def erase(self, openid: str, parts: Iterable[str]) -> bool:
        """Clear parts of a user's profile; True if the user exists."""
        columns = [column for part in sorted(set(parts)) for column in PARTS[part]]
        user_id = self.users.find_id(openid)
        if user_id is None or not columns:
            return user_id is not None
        before = self.users.get(user_id)
        record = self.users.erase(user_id, columns)
        if before is not None and record.profile_version != before.profile_version:
            publish(self.sessions, record)
            for avatar_hash in {before.avatar_hash, before.pending_avatar_hash} - {None}:
                self.avatars.withdraw(avatar_hash)
        return True
