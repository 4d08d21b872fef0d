"""Users in the SQL database, one row per openid, through SQLAlchemy 2."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, func, or_, select, update
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.orm import Session

from services import errors
from services.stores.models import PROFILE_FIELDS, Deletion, User, utcnow
from services.stores.sql import transaction

COLUMN_OF = {name: column for column, name in PROFILE_FIELDS}
# What erasing a part of the profile clears (README "Deleting an account").
AVATAR_COLUMNS = (
    "avatar_url",
    "avatar_hash",
    "pending_avatar_hash",
    "pending_avatar_url",
    "avatar_trace_id",
    "avatar_submitted_at",
)


@dataclass(frozen=True)
class UserRecord:
    id: int
    profile: dict[str, Any]
    profile_version: int
    openid: str = field(repr=False)
    avatar_hash: str | None = None
    pending_avatar_hash: str | None = None


@dataclass(frozen=True)
class PendingAvatar:
    """An uploaded avatar waiting for WeChat's verdict."""

    user_id: int
    hash: str
    url: str
    trace_id: str


class UserStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def upsert_login(self, openid: str, unionid: str | None) -> UserRecord:
        """Create the user on first login; a concurrent first login of the same
        openid lands on the unique constraint and becomes an update."""

        def upsert(db: Session) -> UserRecord:
            db.execute(self._upsert(openid, unionid))
            return _record(db.scalars(select(User).where(User.openid == openid)).one())

        return transaction(self.engine, upsert)

    def get(self, user_id: int) -> UserRecord | None:
        def get(db: Session) -> UserRecord | None:
            user = db.get(User, user_id)
            return _record(user) if user else None

        return transaction(self.engine, get)

    def find_id(self, openid: str) -> int | None:
        return transaction(
            self.engine, lambda db: db.scalar(select(User.id).where(User.openid == openid))
        )

    def update_profile(
        self, user_id: int, changes: Mapping[str, Any], *, unionid: str | None = None
    ) -> UserRecord:
        """Apply profile fields (WeChat's names)."""
        values = {COLUMN_OF[name]: value for name, value in changes.items()}
        if unionid is not None:
            values["unionid"] = unionid
        return self.update(user_id, values)

    def update(
        self, user_id: int, values: Mapping[str, Any], *, only_if: Mapping[str, Any] | None = None
    ) -> UserRecord:
        """Set columns; the profile version goes up only if a value really
        changed, so applying the same change twice changes nothing twice.
        With `only_if`, only while those columns still hold those values.
        Unauthorized if the user is gone."""

        def apply(db: Session) -> UserRecord:
            if values:
                changed = or_(*(getattr(User, k).is_distinct_from(v) for k, v in values.items()))
                guards = [
                    getattr(User, k).is_not_distinct_from(v) for k, v in (only_if or {}).items()
                ]
                db.execute(
                    update(User)
                    .where(User.id == user_id, changed, *guards)
                    .values(**values, profile_version=User.profile_version + 1, updated_at=utcnow())
                )
            user = db.get(User, user_id)
            if user is None:
                raise errors.Unauthorized()
            return _record(user)

        return transaction(self.engine, apply)

    def submit_avatar(self, user_id: int, avatar_hash: str, url: str, trace_id: str) -> UserRecord:
        """Record an upload waiting for WeChat's verdict (replacing any other)."""
        return self.update(
            user_id,
            {
                "pending_avatar_hash": avatar_hash,
                "pending_avatar_url": url,
                "avatar_trace_id": trace_id,
                "avatar_submitted_at": utcnow(),
            },
        )

    def pending_avatar(self, trace_id: str) -> PendingAvatar | None:
        def find(db: Session) -> PendingAvatar | None:
            user = db.scalars(select(User).where(User.avatar_trace_id == trace_id)).first()
            if user is None or not user.pending_avatar_hash or not user.pending_avatar_url:
                return None
            return PendingAvatar(
                user.id, user.pending_avatar_hash, user.pending_avatar_url, trace_id
            )

        return transaction(self.engine, find)

    def settle_avatar(self, pending: PendingAvatar, *, approved: bool) -> UserRecord | None:
        """Apply WeChat's verdict on a pending avatar: on approval it becomes
        the avatar; either way it is no longer pending. None if that upload
        was replaced or the user is gone meanwhile."""
        values: dict[str, Any] = {name: None for name in AVATAR_COLUMNS[2:]}
        if approved:
            values.update(avatar_url=pending.url, avatar_hash=pending.hash)
        try:
            record = self.update(
                pending.user_id, values, only_if={"avatar_trace_id": pending.trace_id}
            )
        except errors.Unauthorized:
            return None
        return record if record.pending_avatar_hash is None else None

    def expired_avatars(self, before: datetime, limit: int = 100) -> list[PendingAvatar]:
        def find(db: Session) -> list[PendingAvatar]:
            rows = db.scalars(select(User).where(User.avatar_submitted_at < before).limit(limit))
            return [
                PendingAvatar(u.id, u.pending_avatar_hash, u.pending_avatar_url, u.avatar_trace_id)
                for u in rows
                if u.pending_avatar_hash and u.pending_avatar_url and u.avatar_trace_id
            ]

        return transaction(self.engine, find)

    def erase(self, user_id: int, columns: Iterable[str]) -> UserRecord:
        """Clear columns of the user (part of the profile a user withdrew)."""
        return self.update(user_id, {name: None for name in columns})

    def avatar_in_use(self, avatar_hash: str) -> bool:
        def find(db: Session) -> bool:
            used = or_(User.avatar_hash == avatar_hash, User.pending_avatar_hash == avatar_hash)
            return db.scalar(select(func.count()).select_from(User).where(used)) > 0

        return transaction(self.engine, find)

    def delete(self, user_id: int, reason: str) -> UserRecord | None:
        """Delete the user's row, keeping only a note that it existed; the
        deleted record, or None if there was none."""

        def remove(db: Session) -> UserRecord | None:
            user = db.get(User, user_id)
            if user is None:
                return None
            record = _record(user)
            db.execute(delete(User).where(User.id == user_id))
            db.add(Deletion(user_id=user_id, reason=reason, deleted_at=utcnow()))
            return record

        return transaction(self.engine, remove)

    def _upsert(self, openid: str, unionid: str | None) -> Any:
        now = utcnow()
        row = {"openid": openid, "unionid": unionid, "created_at": now, "updated_at": now}
        name = self.engine.dialect.name
        if name in {"mysql", "mariadb"}:
            stmt = mysql.insert(User).values(row)
            # In ON DUPLICATE KEY UPDATE a bare column is the existing value.
            return stmt.on_duplicate_key_update(
                unionid=func.coalesce(stmt.inserted.unionid, User.unionid),
                updated_at=stmt.inserted.updated_at,
            )
        dialect = {"postgresql": postgresql, "sqlite": sqlite}.get(name)
        if dialect is None:
            raise RuntimeError(f"unsupported database dialect {name!r}")
        stmt = dialect.insert(User).values(row)
        return stmt.on_conflict_do_update(
            index_elements=[User.openid],
            set_={
                "unionid": func.coalesce(stmt.excluded.unionid, User.unionid),
                "updated_at": stmt.excluded.updated_at,
            },
        )


def _record(user: User) -> UserRecord:
    return UserRecord(
        id=user.id,
        openid=user.openid,
        profile=user.profile(),
        profile_version=user.profile_version or 0,
        avatar_hash=user.avatar_hash,
        pending_avatar_hash=user.pending_avatar_hash,
    )
