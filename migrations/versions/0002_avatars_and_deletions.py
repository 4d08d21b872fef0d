"""Avatars stored by the service, avatars waiting for WeChat's content check,
and the record of deleted accounts.

Revision ID: 0002_avatars
Revises: 0001_users
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002_avatars"
down_revision = "0001_users"
branch_labels = None
depends_on = None


def ascii_id() -> sa.types.TypeEngine:
    # Hashes and trace ids are ASCII and compared byte for byte.
    return sa.String(64).with_variant(
        mysql.VARCHAR(64, charset="ascii", collation="ascii_bin"), "mysql", "mariadb"
    )


def upgrade() -> None:
    op.create_table(
        "avatars",
        sa.Column("hash", ascii_id(), primary_key=True),
        # MySQL's BLOB stops at 64 KB.
        sa.Column(
            "data",
            sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.create_table(
        "deletions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    # SQLite rebuilds the table, with AUTOINCREMENT: a deleted user's id is
    # never handed to anyone else (SQLite would otherwise reuse the largest).
    sqlite = op.get_context().dialect.name == "sqlite"
    with op.batch_alter_table(
        "users",
        recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_autoincrement": True},
    ) as batch:
        batch.add_column(sa.Column("avatar_hash", ascii_id(), nullable=True))
        batch.add_column(sa.Column("pending_avatar_hash", ascii_id(), nullable=True))
        batch.add_column(sa.Column("pending_avatar_url", sa.String(1024), nullable=True))
        batch.add_column(sa.Column("avatar_trace_id", ascii_id(), nullable=True))
        batch.add_column(
            sa.Column("avatar_submitted_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.create_unique_constraint("uq_users_avatar_trace_id", ["avatar_trace_id"])


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_avatar_trace_id", type_="unique")
        batch.drop_column("avatar_submitted_at")
        batch.drop_column("avatar_trace_id")
        batch.drop_column("pending_avatar_url")
        batch.drop_column("pending_avatar_hash")
        batch.drop_column("avatar_hash")
    op.drop_table("deletions")
    op.drop_table("avatars")
