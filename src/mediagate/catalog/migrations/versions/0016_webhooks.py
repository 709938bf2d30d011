"""webhooks: an upload token's notify_url, and deliveries signed when sent (``signing``)

Revision ID: 0016_webhooks
Revises: 0013_catalog_indexes
Create Date: 2026-12-05 15:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_webhooks"
down_revision = "0013_catalog_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("upload_tokens") as batch:
        batch.add_column(sa.Column("notify_url", sa.Text(), nullable=True))
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("signing", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("signing")
    with op.batch_alter_table("upload_tokens") as batch:
        batch.drop_column("notify_url")
