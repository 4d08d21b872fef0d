"""Users: one row per openid, utf8mb4 on MySQL/MariaDB.

Revision ID: 0001_users
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001_users"
down_revision = None
branch_labels = None
depends_on = None


def wechat_id() -> sa.types.TypeEngine:
    # openid/unionid are case-sensitive; a _ci collation would merge two users.
    return sa.String(64).with_variant(
        mysql.VARCHAR(64, charset="ascii", collation="ascii_bin"), "mysql", "mariadb"
    )


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("openid", wechat_id(), nullable=False),
        sa.Column("unionid", wechat_id(), nullable=True),
        sa.Column("nick_name", sa.String(255), nullable=True),
        sa.Column("avatar_url", sa.String(1024), nullable=True),
        sa.Column("gender", sa.SmallInteger(), nullable=True),
        sa.Column("city", sa.String(128), nullable=True),
        sa.Column("province", sa.String(128), nullable=True),
        sa.Column("country", sa.String(128), nullable=True),
        sa.Column("language", sa.String(32), nullable=True),
        sa.Column("phone_number", sa.String(32), nullable=True),
        sa.Column("pure_phone_number", sa.String(32), nullable=True),
        sa.Column("country_code", sa.String(8), nullable=True),
        sa.Column("profile_version", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("openid", name="uq_users_openid"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    op.create_index("ix_users_unionid", "users", ["unionid"])


def downgrade() -> None:
    op.drop_index("ix_users_unionid", table_name="users")
    op.drop_table("users")
