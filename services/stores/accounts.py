"""Accounts and identities in the SQL database, through SQLAlchemy 2.

A login names an identity (appid, openid), with a unionid when WeChat gives
one. Identities with the same unionid belong to one account; when a unionid
shows up late and another account already has it, the two accounts become
one (merge_rule below; README "Accounts and identities").
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services import errors
from services.stores.models import PROFILE_FIELDS, Account, Deletion, Identity, utcnow
from services.stores.sql import transaction

COLUMN_OF = {name: column for column, name in PROFILE_FIELDS}
AVATAR_COLUMNS = (
    "avatar_url",
    "avatar_hash",
    "pending_avatar_hash",
    "pending_avatar_url",
    "avatar_trace_id",
    "avatar_submitted_at",
)
# When two accounts become one, each group moves as a whole, never mixed:
# the surviving account keeps a group it has, and takes the other's otherwise.
MERGE_GROUPS: tuple[tuple[str, ...], ...] = (
    ("nick_name",),
    AVATAR_COLUMNS,
    ("gender",),
    ("city", "province", "country"),
    ("language",),
    ("phone_number", "pure_phone_number", "country_code"),
)
# Two logins creating the same identity or account at once: one of them hits
# the unique constraint and tries again, and then finds the other's row.
CREATE_ATTEMPTS = 3


@dataclass(frozen=True)
class AccountRecord:
    id: int
    profile: dict[str, Any]
    profile_version: int
    avatar_hash: str | None = None
    pending_avatar_hash: str | None = None


@dataclass(frozen=True)
class IdentityRecord:
    id: int
    account_id: int
    appid: str
    openid: str = field(repr=False)


@dataclass(frozen=True)
class LoggedIn:
    """Who a login turned out to be. `merged` lists the accounts that became
    this one (their sessions must now show it), `orphans` the avatar files of
    theirs that no one shows any more."""

    identity: IdentityRecord
    account: AccountRecord
    merged: tuple[int, ...] = ()
    orphans: tuple[str, ...] = ()


@dataclass(frozen=True)
class PendingAvatar:
    """An uploaded avatar waiting for WeChat's verdict."""

    account_id: int
    hash: str
    url: str
    trace_id: str


class AccountStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- logins ---------------------------------------------------------------

    def log_in(self, appid: str, openid: str, unionid: str | None) -> LoggedIn:
        """The identity (created on its first login) and its account, linking
        accounts by unionid."""
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                return transaction(self.engine, lambda db: _log_in(db, appid, openid, unionid))
            except IntegrityError:
                if attempt == CREATE_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0, 0.02 * attempt))  # let the winner commit
        raise AssertionError("unreachable")

    def attach_unionid(self, identity_id: int, unionid: str) -> LoggedIn:
        """A unionid learned after the login (old getUserInfo data carries one)."""
        identity = self.identity(identity_id)
        if identity is None:
            raise errors.Unauthorized()
        return self.log_in(identity.appid, identity.openid, unionid)

    # -- reading ----------------------------------------------------------------

    def get(self, account_id: int) -> AccountRecord | None:
        def get(db: Session) -> AccountRecord | None:
            account = db.get(Account, account_id)
            return _account(account) if account else None

        return transaction(self.engine, get)

    def identity(self, identity_id: int) -> IdentityRecord | None:
        def get(db: Session) -> IdentityRecord | None:
            identity = db.get(Identity, identity_id)
            return _identity(identity) if identity else None

        return transaction(self.engine, get)

    def find_identity(self, appid: str, openid: str) -> IdentityRecord | None:
        def find(db: Session) -> IdentityRecord | None:
            identity = db.scalar(
                select(Identity).where(Identity.appid == appid, Identity.openid == openid)
            )
            return _identity(identity) if identity else None

        return transaction(self.engine, find)

    def identities(self, account_id: int) -> list[IdentityRecord]:
        def find(db: Session) -> list[IdentityRecord]:
            rows = db.scalars(
                select(Identity).where(Identity.account_id == account_id).order_by(Identity.id)
            )
            return [_identity(row) for row in rows]

        return transaction(self.engine, find)

    # -- the profile ----------------------------------------------------------------

    def update_profile(self, account_id: int, changes: Mapping[str, Any]) -> AccountRecord:
        """Apply profile fields (WeChat's names)."""
        return self.update(account_id, {COLUMN_OF[name]: value for name, value in changes.items()})

    def update(
        self,
        account_id: int,
        values: Mapping[str, Any],
        *,
        only_if: Mapping[str, Any] | None = None,
    ) -> AccountRecord:
        """Set columns; the profile version goes up only if a value really
        changed, so applying the same change twice changes nothing twice.
        With `only_if`, only while those columns still hold those values.
        Unauthorized if the account is gone."""

        def apply(db: Session) -> AccountRecord:
            if values:
                changed = or_(*(getattr(Account, k).is_distinct_from(v) for k, v in values.items()))
                guards = [
                    getattr(Account, k).is_not_distinct_from(v) for k, v in (only_if or {}).items()
                ]
                db.execute(
                    update(Account)
                    .where(Account.id == account_id, changed, *guards)
                    .values(
                        **values, profile_version=Account.profile_version + 1, updated_at=utcnow()
                    )
                )
            account = db.get(Account, account_id)
            if account is None:
                raise errors.Unauthorized()
            return _account(account)

        return transaction(self.engine, apply)

    def erase(self, account_id: int, columns: Iterable[str]) -> AccountRecord:
        """Clear columns of the account (part of the profile a user withdrew)."""
        return self.update(account_id, {name: None for name in columns})

    # -- avatars waiting for WeChat -------------------------------------------------

    def submit_avatar(
        self, account_id: int, avatar_hash: str, url: str, trace_id: str
    ) -> AccountRecord:
        """Record an upload waiting for WeChat's verdict (replacing any other)."""
        return self.update(
            account_id,
            {
                "pending_avatar_hash": avatar_hash,
                "pending_avatar_url": url,
                "avatar_trace_id": trace_id,
                "avatar_submitted_at": utcnow(),
            },
        )

    def pending_avatar(self, trace_id: str) -> PendingAvatar | None:
        def find(db: Session) -> PendingAvatar | None:
            account = db.scalar(select(Account).where(Account.avatar_trace_id == trace_id))
            return _pending(account) if account else None

        return transaction(self.engine, find)

    def settle_avatar(self, pending: PendingAvatar, *, approved: bool) -> AccountRecord | None:
        """Apply WeChat's verdict on a pending avatar: on approval it becomes
        the avatar; either way it is no longer pending. None if that upload
        was replaced or the account is gone meanwhile."""
        values: dict[str, Any] = {name: None for name in AVATAR_COLUMNS[2:]}
        if approved:
            values.update(avatar_url=pending.url, avatar_hash=pending.hash)
        try:
            record = self.update(
                pending.account_id, values, only_if={"avatar_trace_id": pending.trace_id}
            )
        except errors.Unauthorized:
            return None
        return record if record.pending_avatar_hash is None else None

    def expired_avatars(self, before: datetime, limit: int = 100) -> list[PendingAvatar]:
        def find(db: Session) -> list[PendingAvatar]:
            rows = db.scalars(
                select(Account).where(Account.avatar_submitted_at < before).limit(limit)
            )
            return [pending for row in rows if (pending := _pending(row))]

        return transaction(self.engine, find)

    def avatar_in_use(self, avatar_hash: str) -> bool:
        def find(db: Session) -> bool:
            used = or_(
                Account.avatar_hash == avatar_hash, Account.pending_avatar_hash == avatar_hash
            )
            return db.scalar(select(func.count()).select_from(Account).where(used)) > 0

        return transaction(self.engine, find)

    # -- deleting -----------------------------------------------------------------

    def delete(self, account_id: int, reason: str) -> AccountRecord | None:
        """Delete the account and its identities, keeping only a note that it
        existed; the deleted record, or None if there was none."""

        def remove(db: Session) -> AccountRecord | None:
            account = db.get(Account, account_id)
            if account is None:
                return None
            record = _account(account)
            db.execute(delete(Identity).where(Identity.account_id == account_id))
            db.execute(delete(Account).where(Account.id == account_id))
            db.add(Deletion(account_id=account_id, reason=reason, deleted_at=utcnow()))
            return record

        return transaction(self.engine, remove)

    def delete_identity(self, identity_id: int) -> int:
        """Remove one identity; how many identities its account has left."""

        def remove(db: Session) -> int:
            identity = db.get(Identity, identity_id)
            if identity is None:
                return 0
            db.delete(identity)
            db.flush()
            left = select(func.count()).select_from(Identity)
            return db.scalar(left.where(Identity.account_id == identity.account_id))

        return transaction(self.engine, remove)


def _log_in(db: Session, appid: str, openid: str, unionid: str | None) -> LoggedIn:
    # No lock to look: a row that is not there yet would be locked as a gap,
    # and concurrent first logins would deadlock; the unique constraints
    # settle that race instead (the loser retries and finds the winner's row).
    # The identity and its account in one statement: a returning user's
    # login reads nothing else.
    found = db.execute(
        select(Identity, Account)
        .join(Account, Account.id == Identity.account_id)
        .where(Identity.appid == appid, Identity.openid == openid)
    ).first()
    if found is None:
        account = _account_for(db, unionid)
        identity = Identity(account_id=account.id, appid=appid, openid=openid, unionid=unionid)
        db.add(identity)
        db.flush()  # a concurrent first login of this identity fails here
        return LoggedIn(_identity(identity), _account(account))
    identity, account = found
    if not unionid or identity.unionid == unionid:
        return LoggedIn(_identity(identity), _account(account))
    # A new unionid: the rows it touches are locked, existing ones only, and
    # read again under the lock.
    db.refresh(identity, with_for_update=True)
    account = db.get(Account, identity.account_id, with_for_update=True, populate_existing=True)
    merged: tuple[int, ...] = ()
    orphans: tuple[str, ...] = ()
    if identity.unionid != unionid:
        identity.unionid = unionid
        other = db.scalar(select(Account).where(Account.unionid == unionid).with_for_update())
        if other is not None and other.id != account.id:
            account, gone = merge_rule(account, other)
            merged, orphans = (gone.id,), _merge(db, account, gone)
        else:
            account.unionid = unionid  # the newest unionid WeChat gives is the account's
    db.flush()
    db.refresh(identity)
    return LoggedIn(_identity(identity), _account(account), merged, orphans)


def _account_for(db: Session, unionid: str | None) -> Account:
    """The account a new identity joins: the one with its unionid, or a new one
    (a concurrent first login of the same person fails on the unique unionid)."""
    if unionid:
        existing = db.scalar(select(Account).where(Account.unionid == unionid))
        if existing is not None:
            return existing
    now = utcnow()
    account = Account(unionid=unionid, created_at=now, updated_at=now, profile_version=0)
    db.add(account)
    db.flush()
    return account


def merge_rule(one: Account, other: Account) -> tuple[Account, Account]:
    """(survivor, merged away): the older account survives, whoever logged in."""
    return (one, other) if one.id < other.id else (other, one)


def _merge(db: Session, keep: Account, gone: Account) -> tuple[str, ...]:
    """Fold `gone` into `keep`; the avatar files nobody shows any more."""
    taken = {
        column: getattr(gone, column)
        for group in MERGE_GROUPS
        if all(getattr(keep, column) is None for column in group)
        for column in group
    }
    orphans = tuple(
        h for h in (gone.avatar_hash, gone.pending_avatar_hash) if h and h not in taken.values()
    )
    unionid = keep.unionid or gone.unionid
    # Unique columns (unionid, the avatar's trace id) leave `gone` first.
    gone.unionid = gone.avatar_trace_id = None
    db.flush()
    for column, value in taken.items():
        setattr(keep, column, value)
    keep.unionid = unionid
    keep.profile_version = max(keep.profile_version, gone.profile_version) + 1
    keep.updated_at = utcnow()
    db.execute(update(Identity).where(Identity.account_id == gone.id).values(account_id=keep.id))
    db.flush()
    db.delete(gone)
    return orphans


def _account(account: Account) -> AccountRecord:
    return AccountRecord(
        id=account.id,
        profile=account.profile(),
        profile_version=account.profile_version or 0,
        avatar_hash=account.avatar_hash,
        pending_avatar_hash=account.pending_avatar_hash,
    )


def _identity(identity: Identity) -> IdentityRecord:
    return IdentityRecord(identity.id, identity.account_id, identity.appid, identity.openid)


def _pending(account: Account) -> PendingAvatar | None:
    if not (account.pending_avatar_hash and account.pending_avatar_url and account.avatar_trace_id):
        return None
    return PendingAvatar(
        account.id, account.pending_avatar_hash, account.pending_avatar_url, account.avatar_trace_id
    )
