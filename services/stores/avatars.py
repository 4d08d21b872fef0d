"""Avatar images, content-addressed. The default storage is the SQL database
(PostgreSQL bytea, MySQL LONGBLOB, SQLite BLOB), which survives a deploy on
platforms whose disk does not; anything with these three methods can stand
in (an object store, say)."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Engine, delete
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.orm import Session

from services.media.avatar import EncodedAvatar
from services.stores.models import Avatar, utcnow
from services.stores.sql import transaction


class AvatarStorage(Protocol):
    def put(self, avatar: EncodedAvatar) -> None:
        """Keep the avatar under its hash (a no-op if it is already kept)."""

    def get(self, avatar_hash: str) -> bytes | None: ...

    def delete(self, avatar_hash: str) -> None: ...


class SqlAvatarStorage:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put(self, avatar: EncodedAvatar) -> None:
        row = {
            "hash": avatar.hash,
            "data": avatar.data,
            "width": avatar.width,
            "height": avatar.height,
            "created_at": utcnow(),
        }
        transaction(self.engine, lambda db: db.execute(self._insert_once(row)))

    def get(self, avatar_hash: str) -> bytes | None:
        def read(db: Session) -> bytes | None:
            avatar = db.get(Avatar, avatar_hash)
            return bytes(avatar.data) if avatar is not None else None

        return transaction(self.engine, read)

    def delete(self, avatar_hash: str) -> None:
        transaction(
            self.engine, lambda db: db.execute(delete(Avatar).where(Avatar.hash == avatar_hash))
        )

    def _insert_once(self, row: dict) -> object:
        # The same picture uploaded twice (or at once by two workers) is one row.
        name = self.engine.dialect.name
        if name in {"mysql", "mariadb"}:
            return mysql.insert(Avatar).values(row).prefix_with("IGNORE")
        dialect = {"postgresql": postgresql, "sqlite": sqlite}[name]
        return dialect.insert(Avatar).values(row).on_conflict_do_nothing(index_elements=["hash"])
