"""Showing a profile change at once: every live session of every identity of
the account gets the new profile (and, after two accounts became one, the
account id that is left). /user/info reads only the session."""

from __future__ import annotations

import logging
from typing import Any

from services.stores.accounts import AccountRecord, AccountStore, LoggedIn
from services.stores.avatars import AvatarStorage
from services.stores.sessions import SessionStore

log = logging.getLogger(__name__)


class AvatarFiles:
    """Stops serving an avatar no account shows or waits for any more."""

    def __init__(self, accounts: AccountStore, storage: AvatarStorage) -> None:
        self.accounts = accounts
        self.storage = storage

    def withdraw(self, avatar_hash: str) -> None:
        if not self.accounts.avatar_in_use(avatar_hash):
            self.storage.delete(avatar_hash)


class Publisher:
    def __init__(
        self, accounts: AccountStore, sessions: SessionStore, avatar_files: AvatarFiles
    ) -> None:
        self.accounts = accounts
        self.sessions = sessions
        self.avatar_files = avatar_files

    def publish(self, record: AccountRecord) -> dict[str, Any]:
        for identity in self.accounts.identities(record.id):
            self.sessions.sync_profile(
                identity.id, record.id, record.profile, record.profile_version
            )
        return record.profile

    def merged(self, logged: LoggedIn) -> None:
        """After a unionid made two accounts one: the sessions of both show the
        account that is left, and avatars neither shows any more are withdrawn."""
        if not logged.merged:
            return
        log.info("account %s now includes account(s) %s", logged.account.id, logged.merged)
        self.publish(logged.account)
        for avatar_hash in logged.orphans:
            self.avatar_files.withdraw(avatar_hash)
