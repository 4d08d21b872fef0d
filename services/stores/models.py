"""The tables. The schema is made by the Alembic history in migrations/.

An account is a person: one profile, one phone number, at most one unionid.
An identity is that person in one app (appid, openid); identities with the
same unionid belong to one account (README "Accounts and identities").
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# openid, unionid and appid are case-sensitive: "oAb" and "oab" are different
# users. MySQL's utf8mb4_unicode_ci would fold them together under an index.
WeChatId = String(64).with_variant(
    mysql.VARCHAR(64, charset="ascii", collation="ascii_bin"), "mysql", "mariadb"
)
# SQLite only autoincrements INTEGER PRIMARY KEY.
RowId = BigInteger().with_variant(Integer(), "sqlite")
# Content hashes and WeChat's trace ids: ASCII, compared byte for byte.
AsciiId = WeChatId
# MySQL's BLOB stops at 64 KB.
Blob = LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
MYSQL_TABLE = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}
# A deleted row's id is never handed to anyone else (Redis keys and sessions
# name accounts and identities by id); SQLite would reuse the largest.
NO_REUSE = {"sqlite_autoincrement": True}

# Profile fields in the order /user/info shows them: (column, WeChat's name).
PROFILE_FIELDS: tuple[tuple[str, str], ...] = (
    ("nick_name", "nickName"),
    ("avatar_url", "avatarUrl"),
    ("gender", "gender"),
    ("city", "city"),
    ("province", "province"),
    ("country", "country"),
    ("language", "language"),
    ("phone_number", "phoneNumber"),
    ("pure_phone_number", "purePhoneNumber"),
    ("country_code", "countryCode"),
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("unionid", name="uq_accounts_unionid"),
        UniqueConstraint("avatar_trace_id", name="uq_accounts_avatar_trace_id"),
        {**MYSQL_TABLE, "mysql_collate": "utf8mb4_unicode_ci", **NO_REUSE},
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    # Set once any identity of the account revealed it.
    unionid: Mapped[str | None] = mapped_column(WeChatId)
    nick_name: Mapped[str | None] = mapped_column(String(255))
    avatar_url: Mapped[str | None] = mapped_column(String(1024))
    gender: Mapped[int | None] = mapped_column(SmallInteger)
    city: Mapped[str | None] = mapped_column(String(128))
    province: Mapped[str | None] = mapped_column(String(128))
    country: Mapped[str | None] = mapped_column(String(128))
    language: Mapped[str | None] = mapped_column(String(32))
    phone_number: Mapped[str | None] = mapped_column(String(32))
    pure_phone_number: Mapped[str | None] = mapped_column(String(32))
    country_code: Mapped[str | None] = mapped_column(String(8))
    # The avatar this service stores (avatar_url is then its public URL), and
    # an uploaded one still waiting for WeChat's content check.
    avatar_hash: Mapped[str | None] = mapped_column(AsciiId)
    pending_avatar_hash: Mapped[str | None] = mapped_column(AsciiId)
    pending_avatar_url: Mapped[str | None] = mapped_column(String(1024))
    avatar_trace_id: Mapped[str | None] = mapped_column(AsciiId)
    avatar_submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Bumped by every profile change; sessions cache the profile by this version.
    profile_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    def profile(self) -> dict[str, Any]:
        profile = {name: getattr(self, column) for column, name in PROFILE_FIELDS}
        profile["avatarReview"] = "pending" if self.pending_avatar_hash else None
        return profile


class Identity(Base):
    """The person in one app: its openid there, and the unionid when WeChat gave one."""

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("appid", "openid", name="uq_identities_appid_openid"),
        Index("ix_identities_account_id", "account_id"),
        Index("ix_identities_unionid", "unionid"),
        {**MYSQL_TABLE, **NO_REUSE},
    )

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(
        RowId, ForeignKey("accounts.id", ondelete="CASCADE", name="fk_identities_account_id")
    )
    appid: Mapped[str] = mapped_column(WeChatId)
    openid: Mapped[str] = mapped_column(WeChatId)
    unionid: Mapped[str | None] = mapped_column(WeChatId)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Avatar(Base):
    """An avatar image as this service serves it: re-encoded JPEG, keyed by the
    SHA-256 of its bytes. Shared by accounts that uploaded the same picture."""

    __tablename__ = "avatars"
    __table_args__ = (MYSQL_TABLE,)

    hash: Mapped[str] = mapped_column(AsciiId, primary_key=True)
    data: Mapped[bytes] = mapped_column(Blob)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Deletion(Base):
    """What is kept of a deleted account: that it existed and when it went,
    nothing personal (README "Deleting an account")."""

    __tablename__ = "deletions"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(32))
    deleted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
