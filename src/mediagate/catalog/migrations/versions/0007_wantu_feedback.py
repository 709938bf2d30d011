"""wantu feedback: the customers' verdicts on scanPorn results (``/3.0/feedback``)

Revision ID: 0007_wantu_feedback
Revises: 0006_tasks
Create Date: 2026-12-05 12:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_wantu_feedback"
down_revision = "0006_tasks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("bucket_id", sa.Integer(), nullable=False),
        sa.Column(
            "key",
            sa.String(length=1024).with_variant(sa.String(length=1024, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("type", sa.Integer(), nullable=False),
        sa.Column("wrong", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["bucket_id"], ["buckets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_feedback_bucket_id"), "feedback", ["bucket_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_feedback_bucket_id"), table_name="feedback")
    op.drop_table("feedback")
