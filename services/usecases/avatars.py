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
from services.stores.access_token import AccessTokenStore
from services.stores.avatars import AvatarStorage
from services.stores.push_guard import PushGuard
from services.stores.sessions import SessionStore
from services.stores.users import PendingAvatar, UserRecord, UserStore
from services.usecases.profile import publish
from services.wechat import WeChatClient

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


class AvatarService:
    def __init__(
        self,
        *,
        users: UserStore,
        sessions: SessionStore,
        storage: AvatarStorage,
        wechat: WeChatClient,
        access_token: AccessTokenStore,
        push_guard: PushGuard,
        settings: AvatarSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.users = users
        self.sessions = sessions
        self.storage = storage
        self.wechat = wechat
        self.access_token = access_token
        self.push_guard = push_guard
        self.settings = settings
        self.clock = clock

    def upload(self, user_id: int, upload: bytes, base_url: str) -> dict[str, Any]:
        """Store the upload and ask WeChat to check it; the profile, with the
        URL the avatar will have once approved as pendingAvatarUrl."""
        user = self.users.get(user_id)
        if user is None:
            raise errors.Unauthorized()
        avatar = encode_avatar(upload, max_pixels=self.settings.max_pixels, size=self.settings.size)
        url = f"{base_url}/avatars/{avatar.hash}.jpg"
        if avatar.hash == user.avatar_hash:
            return {**user.profile, "pendingAvatarUrl": None}  # it already is the avatar
        self.storage.put(avatar)
        trace_id = self.access_token.call(
            lambda access_token: self.wechat.media_check_async(
                access_token, media_url=url, openid=user.openid
            )
        )
        record = self.users.submit_avatar(user.id, avatar.hash, url, trace_id)
        publish(self.sessions, record)
        if user.pending_avatar_hash not in (None, avatar.hash):
            self.withdraw(user.pending_avatar_hash)
        # The verdict may have been pushed before the upload was recorded.
        parked = self.push_guard.claim_parked(trace_id)
        if parked is not None:
            record = self.settle(trace_id, MediaVerdict(**json.loads(parked))) or record
        self.expire_reviews()
        return {**record.profile, "pendingAvatarUrl": url if record.pending_avatar_hash else None}

    def settle(self, trace_id: str, verdict: MediaVerdict) -> UserRecord | None:
        """Apply WeChat's verdict on an upload; the user's record after it, or
        None for a trace_id no upload is waiting for (kept a while, in case
        its upload is still being recorded)."""
        pending = self.users.pending_avatar(trace_id)
        if pending is None:
            self.push_guard.park(trace_id, json.dumps(verdict.__dict__))
            log.info("media check verdict for a trace_id no upload waits for; kept")
            return None
        return self._settle(pending, verdict.approves(self.settings.review_policy))

    def _settle(self, pending: PendingAvatar, approved: bool) -> UserRecord | None:
        before = self.users.get(pending.user_id)
        record = self.users.settle_avatar(pending, approved=approved)
        if record is None:  # replaced by a newer upload, or the user is gone
            self.withdraw(pending.hash)
            return None
        publish(self.sessions, record)
        replaced = before.avatar_hash if approved and before else pending.hash
        if replaced and replaced != record.avatar_hash:
            self.withdraw(replaced)
        log.info("avatar of user %s %s", record.id, "approved" if approved else "refused")
        return record

    def expire_reviews(self) -> int:
        """Uploads whose verdict never came count as refused (a bounded batch)."""
        cutoff = self.clock() - timedelta(seconds=self.settings.review_timeout)
        expired = self.users.expired_avatars(before=cutoff)
        for pending in expired:
            self._settle(pending, approved=False)
        return len(expired)

    def withdraw(self, avatar_hash: str) -> None:
        """Stop serving an avatar no user shows or waits for any more."""
        if not self.users.avatar_in_use(avatar_hash):
            self.storage.delete(avatar_hash)

    def image(self, avatar_hash: str) -> bytes | None:
        return self.storage.get(avatar_hash)
