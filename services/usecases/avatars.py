"""Avatars the user fills in with `<button open-type="chooseAvatar">`.

The upload is decoded and re-encoded (services/media/avatar.py), stored
under its hash, and sent to WeChat's image content security, whose verdict
arrives later by message push. Until a "pass" (or a "review" under
PROFILE_REVIEW_POLICY=accept) it is only pending: the profile keeps its old
avatar and says `avatarReview: "pending"`; a refused upload is withdrawn (its
URL answers 404). A verdict that never comes expires after
AVATAR_REVIEW_TIMEOUT like a refusal.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services import errors
from services.media.avatar import encode_avatar
from services.stores.accounts import AccountRecord, AccountStore, PendingAvatar
from services.stores.avatars import AvatarStorage
from services.stores.push_guard import PushGuard
from services.usecases.content import ContentSecurity
from services.usecases.publishing import AvatarFiles, Publisher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AvatarSettings:
    max_pixels: int
    size: int
    review_timeout: int
    review_policy: str = "reject"


@dataclass(frozen=True)
class MediaVerdict:
    """What a wxa_media_check push says: errcode -1008 means WeChat could
    not download the image."""

    suggest: str
    errcode: int = 0

    def approves(self, review_policy: str) -> bool:
        if self.errcode != 0:
            return False
        return self.suggest == "pass" or (self.suggest == "review" and review_policy == "accept")


def refusal(verdict: MediaVerdict) -> errors.ServiceError:
    """A verdict that was already in when the upload was answered: the
    upload is answered with it, as a text check would be."""
    data = {"field": "avatarUrl"}
    if verdict.errcode != 0:
        # -1008: WeChat could not download the image from AVATAR_BASE_URL.
        log.error("WeChat could not download an avatar to check it: is AVATAR_BASE_URL public?")
        return errors.WeChatError("WeChat could not download the avatar to check it.", data=data)
    if verdict.suggest == "risky":
        return errors.ContentRisky(
            "WeChat's content security rates this avatar as risky; it was not saved.", data=data
        )
    return errors.ContentNeedsReview(
        "WeChat's content security wants this avatar reviewed by a person; it was not saved.",
        data=data,
    )


class AvatarService:
    def __init__(
        self,
        *,
        accounts: AccountStore,
        storage: AvatarStorage,
        files: AvatarFiles,
        content: ContentSecurity,
        publisher: Publisher,
        push_guard: PushGuard,
        settings: AvatarSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.accounts = accounts
        self.storage = storage
        self.files = files
        self.content = content
        self.publisher = publisher
        self.push_guard = push_guard
        self.settings = settings
        self.clock = clock

    def upload(self, identity_id: int, upload: bytes, base_url: str) -> dict[str, Any]:
        """Store the upload and ask WeChat to check it; the profile, with the
        URL the avatar will have once approved as pendingAvatarUrl."""
        identity = self.accounts.identity(identity_id)
        account = self.accounts.get(identity.account_id) if identity else None
        if identity is None or account is None:
            raise errors.Unauthorized()
        avatar = encode_avatar(upload, max_pixels=self.settings.max_pixels, size=self.settings.size)
        url = f"{base_url}/avatars/{avatar.hash}.jpg"
        if avatar.hash == account.avatar_hash:
            return {**account.profile, "pendingAvatarUrl": None}  # it already is the avatar
        self.storage.put(avatar)
        try:
            trace_id = self.content.check_image(identity, url)
        except Exception:
            self.files.withdraw(avatar.hash)  # never checked: never served
            raise
        record = self.accounts.submit_avatar(account.id, avatar.hash, url, trace_id)
        self.publisher.publish(record)
        if account.pending_avatar_hash not in (None, avatar.hash):
            self.files.withdraw(account.pending_avatar_hash)
        self.expire_reviews()
        # WeChat may have pushed its verdict before the upload was recorded.
        parked = self.push_guard.claim_parked(trace_id)
        if parked is not None:
            verdict = MediaVerdict(**json.loads(parked))
            record = self.settle(trace_id, verdict) or record
            if not verdict.approves(self.settings.review_policy):
                raise refusal(verdict)
        return {**record.profile, "pendingAvatarUrl": url if record.pending_avatar_hash else None}

    def settle(self, trace_id: str, verdict: MediaVerdict) -> AccountRecord | None:
        """Apply WeChat's verdict on an upload; the account's record after it,
        or None for a trace_id no upload is waiting for (kept a while, in case
        its upload is still being recorded)."""
        pending = self.accounts.pending_avatar(trace_id)
        if pending is None:
            self.push_guard.park(trace_id, json.dumps(verdict.__dict__))
            log.info("media check verdict for a trace_id no upload waits for; kept")
            return None
        return self._settle(pending, verdict.approves(self.settings.review_policy))

    def _settle(self, pending: PendingAvatar, approved: bool) -> AccountRecord | None:
        before = self.accounts.get(pending.account_id)
        record = self.accounts.settle_avatar(pending, approved=approved)
        if record is None:  # replaced by a newer upload, or the account is gone
            self.files.withdraw(pending.hash)
            return None
        self.publisher.publish(record)
        replaced = before.avatar_hash if approved and before else pending.hash
        if replaced and replaced != record.avatar_hash:
            self.files.withdraw(replaced)
        log.info("avatar of account %s %s", record.id, "approved" if approved else "refused")
        return record

    def expire_reviews(self) -> int:
        """Uploads whose verdict never came count as refused (a bounded batch)."""
        cutoff = self.clock() - timedelta(seconds=self.settings.review_timeout)
        expired = self.accounts.expired_avatars(before=cutoff)
        for pending in expired:
            self._settle(pending, approved=False)
        return len(expired)

    def image(self, avatar_hash: str) -> bytes | None:
        return self.storage.get(avatar_hash)
