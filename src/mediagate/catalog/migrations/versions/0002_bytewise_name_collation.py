"""bytewise (C) collation for object and folder names on PostgreSQL

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 10:55:00

Listings page with ``name > after`` and merge folders with objects in Python by code point; on a
database whose default collation is linguistic (en_US.UTF-8, ICU) the two orders disagree and a
paged listing skips or repeats entries. SQLite compares bytes already, so this is PostgreSQL-only.
Changing a column's collation rebuilds the indexes on it (ix_objects_dir, the unique keys).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = {"objects": ("key", "dir", "name"), "folders": ("path", "dir", "name")}


def _set_collation(collation: str | None) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in COLUMNS.items():
        for column in columns:
            op.alter_column(
                table,
                column,
                existing_type=sa.String(length=1024),
                type_=sa.String(length=1024, collation=collation),
                existing_nullable=False,
            )


def upgrade() -> None:
    _set_collation("C")


def downgrade() -> None:
    _set_collation("default")
