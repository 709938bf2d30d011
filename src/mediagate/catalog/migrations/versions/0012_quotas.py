"""quotas: a bucket's limits and its usage counters (core.quotas), backfilled from its objects

Revision ID: 0012_quotas
Revises: 0009_api_keys
Create Date: 2026-12-05 14:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_quotas"
down_revision = "0010_text_rules"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quotas",
        sa.Column("bucket_id", sa.Integer(), nullable=False),
        sa.Column("max_bytes", sa.BigInteger(), nullable=True),
        sa.Column("max_objects", sa.BigInteger(), nullable=True),
        sa.Column("uploads_per_minute", sa.Integer(), nullable=True),
        sa.Column("key_uploads_per_minute", sa.Integer(), nullable=True),
        sa.Column("token_uploads_per_minute", sa.Integer(), nullable=True),
        sa.Column("bytes_used", sa.BigInteger(), nullable=False),
        sa.Column("objects_used", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["bucket_id"], ["buckets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("bucket_id"),
    )
    op.execute(
        "INSERT INTO quotas (bucket_id, bytes_used, objects_used) "
        "SELECT b.id, COALESCE(SUM(o.size), 0), COUNT(o.id) "
        "FROM buckets b LEFT JOIN objects o ON o.bucket_id = b.id GROUP BY b.id"
    )


def downgrade() -> None:
    op.drop_table("quotas")
