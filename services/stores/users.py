"""Users in the SQL database, one row per openid, through SQLAlchemy 2."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from services import errors
from services.stores.models import PROFILE_FIELDS, User, utcnow

COLUMN_OF = {name: column for column, name in PROFILE_FIELDS}
T = TypeVar("T")
ATTEMPTS = 3
# A transaction the database chose to abort so another could go on: try again.
MYSQL_CONFLICTS = {1213, 1205}  # deadlock, lock wait timeout
POSTGRES_CONFLICTS = {"40001", "40P01"}  # serialization failure, deadlock


@dataclass(frozen=True)
class UserRecord:
    id: int
    profile: dict[str, Any]
    profile_version: int
    openid: str = field(repr=False)


class UserStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _transaction(self, work: Callable[[Session], T]) -> T:
        """Run `work` in one transaction; the one place a failing database
        becomes a domain error."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with Session(self.engine, expire_on_commit=False) as db, db.begin():
                    return work(db)
            except OperationalError as exc:
                if attempt < ATTEMPTS and _lost_a_conflict(exc):
                    continue
                raise errors.DatabaseUnavailable() from None
            except (InterfaceError, PoolTimeout):
                raise errors.DatabaseUnavailable() from None
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    raise errors.DatabaseUnavailable() from None
                raise
        raise AssertionError("unreachable")

    def upsert_login(self, openid: str, unionid: str | None) -> UserRecord:
        """Create the user on first login; a concurrent first login of the same
        openid lands on the unique constraint and becomes an update."""

        def upsert(db: Session) -> UserRecord:
            db.execute(self._upsert(openid, unionid))
            return _record(db.scalars(select(User).where(User.openid == openid)).one())

        return self._transaction(upsert)

    def get(self, user_id: int) -> UserRecord | None:
        def get(db: Session) -> UserRecord | None:
            user = db.get(User, user_id)
            return _record(user) if user else None

        return self._transaction(get)

    def find_id(self, openid: str) -> int | None:
        return self._transaction(
            lambda db: db.scalar(select(User.id).where(User.openid == openid))
        )

    def update_profile(
        self, user_id: int, changes: Mapping[str, Any], *, unionid: str | None = None
    ) -> UserRecord:
        """Apply profile fields (WeChat's names) and bump the profile version."""
        values = {COLUMN_OF[name]: value for name, value in changes.items()}
        if unionid is not None:
            values["unionid"] = unionid

        def apply(db: Session) -> UserRecord:
            if values:
                db.execute(
                    update(User)
                    .where(User.id == user_id)
                    .values(**values, profile_version=User.profile_version + 1, updated_at=utcnow())
                )
            user = db.get(User, user_id)
            if user is None:
                raise errors.Unauthorized()
            return _record(user)

        return self._transaction(apply)

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


def _lost_a_conflict(exc: OperationalError) -> bool:
    orig = exc.orig
    code = getattr(orig, "args", (None,))[0] if orig is not None else None
    return code in MYSQL_CONFLICTS or getattr(orig, "sqlstate", None) in POSTGRES_CONFLICTS


def _record(user: User) -> UserRecord:
    return UserRecord(
        id=user.id,
        openid=user.openid,
        profile=user.profile(),
        profile_version=user.profile_version or 0,
    )
