"""Deleting an account, and what WeChat tells us a user withdrew.

Deletion erases everything personal (profile, phone, unionid, avatar files,
session_keys, every identity), ends every session in every app at once on
every worker and instance, and frees the openids: a later login starts a
fresh, empty account. What is kept: a row in `deletions` with the old account
id, the reason and the time.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from services.stores.accounts import AVATAR_COLUMNS, AccountStore
from services.stores.session_keys import SessionKeyRing
from services.stores.sessions import SessionStore
from services.usecases.publishing import AvatarFiles, Publisher

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
        accounts: AccountStore,
        sessions: SessionStore,
        session_keys: SessionKeyRing,
        avatar_files: AvatarFiles,
        publisher: Publisher,
    ) -> None:
        self.accounts = accounts
        self.sessions = sessions
        self.session_keys = session_keys
        self.avatar_files = avatar_files
        self.publisher = publisher

    def delete(self, account_id: int, reason: str) -> bool:
        """Idempotent: False when there was nothing left to delete."""
        identities = self.accounts.identities(account_id)
        # Sessions first: from here on no request sees the account.
        for identity in identities:
            self.sessions.forget_identity(identity.id)
        deleted = self.accounts.delete(account_id, reason)
        for identity in identities:
            self.session_keys.forget(identity.id)
        if deleted is None:
            return False
        for avatar_hash in {deleted.avatar_hash, deleted.pending_avatar_hash} - {None}:
            self.avatar_files.withdraw(avatar_hash)
        log.info("deleted account %s (%s)", account_id, reason)
        return True

    def delete_by_openid(self, appid: str, openid: str, reason: str) -> bool:
        identity = self.accounts.find_identity(appid, openid)
        return identity is not None and self.delete(identity.account_id, reason)

    def cancel(self, appid: str, openid: str) -> bool:
        """user_authorization_cancellation: the user left this app. Its identity
        goes; the account goes with its last identity."""
        identity = self.accounts.find_identity(appid, openid)
        if identity is None:
            return False
        self.sessions.forget_identity(identity.id)
        left = self.accounts.delete_identity(identity.id)
        self.session_keys.forget(identity.id)
        if left == 0:
            self.delete(identity.account_id, "wechat_cancellation")
        return True

    def withdraw(self, appid: str, openid: str, revoke_info: str) -> bool:
        """user_authorization_revoke: erase what the codes name."""
        parts = {part for code in re.findall(r"\d+", revoke_info) for part in REVOKED.get(code, ())}
        return self.erase(appid, openid, parts)

    def erase(self, appid: str, openid: str, parts: Iterable[str]) -> bool:
        """Clear parts of the profile of the identity's account; True if it exists."""
        columns = [column for part in sorted(set(parts)) for column in PARTS[part]]
        identity = self.accounts.find_identity(appid, openid)
        before = self.accounts.get(identity.account_id) if identity else None
        if identity is None or before is None:
            return False
        record = self.accounts.erase(before.id, columns) if columns else before
        if record.profile_version != before.profile_version:
            self.publisher.publish(record)
            for avatar_hash in {before.avatar_hash, before.pending_avatar_hash} - {None}:
                self.avatar_files.withdraw(avatar_hash)
        return True
