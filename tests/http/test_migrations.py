"""The Alembic history is the only way the schema is made: it must build the
whole schema on every backend, undo it, match the models exactly, and carry
existing data over."""

from __future__ import annotations

from datetime import UTC, datetime

import flask_migrate
from sqlalchemy import inspect, text

from blueprints.extensions import db
from support.constants import APPID


def test_the_models_match_the_migration_history(app):
    with app.app_context():
        flask_migrate.check()  # raises if autogenerate would find a difference


def test_the_history_goes_down_and_up_again(app):
    with app.app_context():
        flask_migrate.downgrade(revision="base")
        assert "accounts" not in inspect(db.engine).get_table_names()
        flask_migrate.upgrade()
        tables = inspect(db.engine)
        assert {"accounts", "identities", "avatars", "deletions"} <= set(tables.get_table_names())
        unique = {tuple(c["column_names"]) for c in tables.get_unique_constraints("identities")}
        unique |= {
            tuple(i["column_names"]) for i in tables.get_indexes("identities") if i["unique"]
        }
        assert ("appid", "openid") in unique
        foreign = tables.get_foreign_keys("identities")
        assert [(f["referred_table"], f["constrained_columns"]) for f in foreign] == [
            ("accounts", ["account_id"])
        ]


def test_single_app_users_become_accounts_with_identities(app):
    """A deployment on the single-app schema upgrades with `flask db upgrade`
    alone: each user keeps its id (its sessions' account) and its data, and
    its openid becomes an identity of the default app."""
    now = datetime.now(UTC)
    with app.app_context():
        flask_migrate.downgrade(revision="0002_avatars")
        with db.engine.begin() as conn:
            for user_id, openid, unionid, nick in [
                (7, "oSevenOpenid0000000000000000", "oUnionSeven00000000000000000", "七🐱"),
                (9, "oNineOpenid00000000000000000", None, None),
                (12, "oTwelveOpenid000000000000000", "oUnionSeven00000000000000000", "dup"),
            ]:
                conn.execute(
                    text(
                        "INSERT INTO users (id, openid, unionid, nick_name, phone_number, "
                        "profile_version, created_at, updated_at) "
                        "VALUES (:id, :openid, :unionid, :nick, '13800138000', 3, :now, :now)"
                    ),
                    {"id": user_id, "openid": openid, "unionid": unionid, "nick": nick, "now": now},
                )
        flask_migrate.upgrade()
        with db.engine.connect() as conn:
            accounts = conn.execute(
                text("SELECT id, unionid, nick_name, phone_number, profile_version FROM accounts")
            ).all()
            identities = conn.execute(
                text("SELECT account_id, appid, openid, unionid FROM identities ORDER BY 1")
            ).all()
    assert sorted(tuple(row) for row in accounts) == [
        (7, "oUnionSeven00000000000000000", "七🐱", "13800138000", 3),
        (9, None, None, "13800138000", 3),
        # Two rows cannot share a unionid: the older keeps it.
        (12, None, "dup", "13800138000", 3),
    ]
    assert [tuple(row) for row in identities] == [
        (7, APPID, "oSevenOpenid0000000000000000", "oUnionSeven00000000000000000"),
        (9, APPID, "oNineOpenid00000000000000000", None),
        # Its next login reveals the unionid again and joins it to account 7.
        (12, APPID, "oTwelveOpenid000000000000000", None),
    ]
