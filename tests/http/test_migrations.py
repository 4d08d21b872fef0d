"""The Alembic history is the only way the schema is made: it must build the
whole schema on every backend, undo it, and match the models exactly."""

from __future__ import annotations

import flask_migrate
from sqlalchemy import inspect

from blueprints.extensions import db


def test_the_models_match_the_migration_history(app):
    with app.app_context():
        flask_migrate.check()  # raises if autogenerate would find a difference


def test_the_history_goes_down_and_up_again(app):
    with app.app_context():
        flask_migrate.downgrade(revision="base")
        assert "users" not in inspect(db.engine).get_table_names()
        flask_migrate.upgrade()
        tables = inspect(db.engine)
        assert "users" in tables.get_table_names()
        indexes = {index["name"]: index for index in tables.get_indexes("users")}
        assert indexes["ix_users_unionid"]["column_names"] == ["unionid"]
        unique = tables.get_unique_constraints("users")
        assert any(c["column_names"] == ["openid"] for c in unique) or any(
            i["unique"] and i["column_names"] == ["openid"] for i in indexes.values()
        )
