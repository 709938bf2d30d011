"""catalog indexes: every listing and lookup served by an index at 10^6 objects

Revision ID: 0013_catalog_indexes
Revises: 0008_notify
Create Date: 2026-12-05 14:40:00

* ``ix_objects_dir_live`` (bucket_id, dir, name, expires_at) takes over from ``ix_objects_dir``
  (bucket_id, dir, name): the same listings in the same order, and a folder's count and the walk
  to a Wantu page number read the index alone instead of every row's expiry from the table. The
  old index is dropped once the new one exists (it would only cost every upload a write); the
  downgrade puts it back.
* ``ix_objects_expiring``: the collector's expired-object sweep (a full scan before), partial so
  objects without a ttl are not in it.
* ``ix_credentials_bucket_kind``: a bucket's active secrets of one kind, newest first (every
  authorised request), read in index order.
* newest-first listings of ``mediagate task list``, ``mediagate notify list`` and Wantu's
  ``GET /3.0/feedback`` (all, by bucket or by status), in index order (PostgreSQL sorted them before).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_catalog_indexes"
down_revision = "0012_quotas"
branch_labels = None
depends_on = None

_EXPIRING = sa.text("expires_at IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_objects_dir_live", "objects", ["bucket_id", "dir", "name", "expires_at"])
    op.drop_index("ix_objects_dir", table_name="objects")
    op.create_index(
        "ix_objects_expiring",
        "objects",
        ["expires_at"],
        sqlite_where=_EXPIRING,
        postgresql_where=_EXPIRING,
    )
    op.create_index("ix_credentials_bucket_kind", "credentials", ["bucket_id", "kind", "id"])
    op.create_index("ix_tasks_recent", "tasks", ["created_at", "id"])
    op.create_index("ix_tasks_bucket_recent", "tasks", ["bucket_id", "created_at", "id"])
    op.create_index("ix_tasks_status_recent", "tasks", ["status", "created_at", "id"])
    op.create_index("ix_deliveries_bucket_recent", "deliveries", ["bucket_id", "id"])
    op.create_index("ix_deliveries_state_recent", "deliveries", ["state", "id"])
    op.create_index("ix_feedback_bucket_recent", "feedback", ["bucket_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_feedback_bucket_recent", table_name="feedback")
    op.drop_index("ix_deliveries_state_recent", table_name="deliveries")
    op.drop_index("ix_deliveries_bucket_recent", table_name="deliveries")
    op.drop_index("ix_tasks_status_recent", table_name="tasks")
    op.drop_index("ix_tasks_bucket_recent", table_name="tasks")
    op.drop_index("ix_tasks_recent", table_name="tasks")
    op.drop_index("ix_credentials_bucket_kind", table_name="credentials")
    op.drop_index("ix_objects_expiring", table_name="objects")
    op.create_index("ix_objects_dir", "objects", ["bucket_id", "dir", "name"])
    op.drop_index("ix_objects_dir_live", table_name="objects")
