"""Users in the SQL database, one row per openid, through SQLAlchemy 2."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event, func, select, update
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from services import errors
from services.models import PROFILE_FIELDS, User, utcnow

COLUMN_OF = {name: column for column, name in PROFILE_FIELDS}


@dataclass(frozen=True)
class UserRecord:
    id: int
    profile: dict[str, Any]
    profile_version: int
    openid: str = field(repr=False)


def configure_sqlite(engine: Engine) -> None:
    """Several gunicorn workers write one SQLite file: WAL lets readers go on
    while one writes, and busy_timeout makes writers wait instead of failing."""

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


class UserStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _session(self) -> Iterator[Session]:
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                yield session
        except OperationalError:
            raise errors.DatabaseUnavailable() from None
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise errors.DatabaseUnavailable() from None
            raise

    def upsert_login(self, openid: str, unionid: str | None) -> UserRecord:
        """Create the user on first login; a concurrent first login of the same
        openid lands on the unique constraint and becomes an update."""
        with self._session() as session:
            session.execute(self._upsert(openid, unionid))
            user = session.scalars(select(User).where(User.openid == openid)).one()
            return _record(user)

    def get(self, user_id: int) -> UserRecord | None:
        with self._session() as session:
            user = session.get(User, user_id)
            return _record(user) if user else None

    def find_id(self, openid: str) -> int | None:
        with self._session() as session:
            return session.scalar(select(User.id).where(User.openid == openid))

    def update_profile(
        self, user_id: int, changes: Mapping[str, Any], *, unionid: str | None = None
    ) -> UserRecord:
        """Apply profile fields (WeChat's names) and bump the profile version."""
        values = {COLUMN_OF[name]: value for name, value in changes.items()}
        if unionid is not None:
            values["unionid"] = unionid
        with self._session() as session:
            if values:
                session.execute(
                    update(User)
                    .where(User.id == user_id)
                    .values(
                        **values,
                        profile_version=User.profile_version + 1,
                        updated_at=utcnow(),
                    )
                )
            user = session.get(User, user_id)
            if user is None:
                raise errors.Unauthorized()
            return _record(user)

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
    )
