"""text rules: each bucket's textjudge word list and regular expressions

Revision ID: 0010_text_rules
Revises: 0008_notify
Create Date: 2026-12-05 14:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_text_rules"
down_revision = "0009_api_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "text_rules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("bucket_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("pattern", sa.String(length=512), nullable=False),
        sa.Column("label", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["bucket_id"], ["buckets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("bucket_id", "kind", "pattern", name="uq_text_rules_pattern"),
    )
    op.create_index(op.f("ix_text_rules_bucket_id"), "text_rules", ["bucket_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_text_rules_bucket_id"), table_name="text_rules")
    op.drop_table("text_rules")
