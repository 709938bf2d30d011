"""delivery attempts and newest-first object listing

Revision ID: 0017_delivery_attempts
Revises: 0013_catalog_indexes
Create Date: 2026-12-05 15:15:00

* ``delivery_attempts``: one row per try of a notification (when, HTTP status, error), written in
  the transaction that records the try on its delivery; the newest 20 of a delivery are kept and
  they go with it (``ON DELETE CASCADE``).
* ``ix_objects_recent`` (bucket_id, created_at, id): a bucket's uploads newest first
  (``GET /v1/buckets/{b}/objects?order=newest``), keyset-paged, read in index order.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_delivery_attempts"
down_revision = "0016_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "delivery_id",
            sa.Integer(),
            sa.ForeignKey("deliveries.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_delivery_attempts_delivery", "delivery_attempts", ["delivery_id", "id"])
    op.create_index("ix_objects_recent", "objects", ["bucket_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_objects_recent", table_name="objects")
    op.drop_index("ix_delivery_attempts_delivery", table_name="delivery_attempts")
    op.drop_table("delivery_attempts")
