"""Accounts and identities: a person's account, and one identity per app.

Each existing user becomes an account with the same id, and its openid an
identity of the default app (the first of WECHAT_APPS, or WECHAT_APPID): a
single-app deployment upgrades with `flask db upgrade` alone.

Revision ID: 0003_accounts
Revises: 0002_avatars
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op
from flask import current_app
from sqlalchemy.dialects import mysql

import config

revision = "0003_accounts"
down_revision = "0002_avatars"
branch_labels = None
depends_on = None


def wechat_id() -> sa.types.TypeEngine:
    # appid, openid and unionid are case-sensitive.
    return sa.String(64).with_variant(
        mysql.VARCHAR(64, charset="ascii", collation="ascii_bin"), "mysql", "mariadb"
    )


def row_id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def recreate() -> dict:
    # SQLite rebuilds a table to change constraints; keep AUTOINCREMENT.
    sqlite = op.get_context().dialect.name == "sqlite"
    return {
        "recreate": "always" if sqlite else "auto",
        "table_kwargs": {"sqlite_autoincrement": True},
    }


def upgrade() -> None:
    appid = config.wechat_apps(current_app.config)[0].appid
    # A unionid belongs to one person: should two rows carry one, the older keeps it.
    op.execute(
        "UPDATE users SET unionid = NULL WHERE unionid IS NOT NULL AND id > "
        "(SELECT m FROM (SELECT MIN(u.id) AS m, u.unionid AS x FROM users u "
        "GROUP BY u.unionid) AS firsts WHERE firsts.x = users.unionid)"
    )
    op.rename_table("users", "accounts")
    op.create_table(
        "identities",
        sa.Column("id", row_id(), primary_key=True, autoincrement=True),
        sa.Column(
            "account_id",
            row_id(),
            sa.ForeignKey("accounts.id", ondelete="CASCADE", name="fk_identities_account_id"),
            nullable=False,
        ),
        sa.Column("appid", wechat_id(), nullable=False),
        sa.Column("openid", wechat_id(), nullable=False),
        sa.Column("unionid", wechat_id(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("appid", "openid", name="uq_identities_appid_openid"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        sqlite_autoincrement=True,
    )
    op.create_index("ix_identities_account_id", "identities", ["account_id"])
    op.create_index("ix_identities_unionid", "identities", ["unionid"])
    op.execute(
        sa.text(
            "INSERT INTO identities (account_id, appid, openid, unionid, created_at) "
            "SELECT id, :appid, openid, unionid, created_at FROM accounts ORDER BY id"
        ).bindparams(appid=appid)
    )
    op.drop_index("ix_users_unionid", table_name="accounts")
    with op.batch_alter_table("accounts", **recreate()) as batch:
        batch.drop_constraint("uq_users_openid", type_="unique")
        batch.drop_constraint("uq_users_avatar_trace_id", type_="unique")
        batch.drop_column("openid")
        batch.create_unique_constraint("uq_accounts_unionid", ["unionid"])
        batch.create_unique_constraint("uq_accounts_avatar_trace_id", ["avatar_trace_id"])
    with op.batch_alter_table("deletions") as batch:
        batch.alter_column(
            "user_id",
            new_column_name="account_id",
            existing_type=sa.BigInteger(),
            existing_nullable=False,
        )


def downgrade() -> None:
    """Back to one openid per user: each account keeps its oldest identity's."""
    with op.batch_alter_table("deletions") as batch:
        batch.alter_column(
            "account_id",
            new_column_name="user_id",
            existing_type=sa.BigInteger(),
            existing_nullable=False,
        )
    with op.batch_alter_table("accounts", **recreate()) as batch:
        batch.add_column(sa.Column("openid", wechat_id(), nullable=True))
    op.execute(
        "UPDATE accounts SET openid = (SELECT i.openid FROM identities i "
        "WHERE i.account_id = accounts.id ORDER BY i.id LIMIT 1)"
    )
    op.execute("DELETE FROM accounts WHERE openid IS NULL")
    op.drop_table("identities")
    with op.batch_alter_table("accounts", **recreate()) as batch:
        batch.alter_column("openid", existing_type=wechat_id(), nullable=False)
        batch.drop_constraint("uq_accounts_unionid", type_="unique")
        batch.drop_constraint("uq_accounts_avatar_trace_id", type_="unique")
        batch.create_unique_constraint("uq_users_openid", ["openid"])
        batch.create_unique_constraint("uq_users_avatar_trace_id", ["avatar_trace_id"])
    op.rename_table("accounts", "users")
    op.create_index("ix_users_unionid", "users", ["unionid"])
