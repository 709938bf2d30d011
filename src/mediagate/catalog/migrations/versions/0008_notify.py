"""notify: a delivery's bucket, last HTTP status and delivery time (``mediagate notify``)

Revision ID: 0008_notify
Revises: 0007_wantu_feedback
Create Date: 2026-12-05 13:25:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_notify"
down_revision = "0007_wantu_feedback"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("bucket_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("last_status", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_deliveries_bucket_id"), "deliveries", ["bucket_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_deliveries_bucket_id"), table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("delivered_at")
        batch.drop_column("last_status")
        batch.drop_column("bucket_id")
