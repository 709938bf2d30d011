"""upload sessions may end before session_max_age_seconds: their own expiry

Revision ID: 0019_session_expiry
Revises: 0018_token_overwrite
Create Date: 2026-12-05 17:50:00

* ``upload_sessions.expires_at`` (nullable): when the session is dead whatever its last activity,
  because the dialect's own credentials for it have expired (an ImageX ``ApplyImageUpload``: its
  ``Auth`` and ``SessionKey`` live at most an hour). The collector ends such a session then,
  instead of keeping its row and its parts' blobs for ``session_max_age_seconds`` (a week by
  default): under sustained load, applies never committed would otherwise pile up for a week.
* ``ix_upload_sessions_expiring``: the collector's sweep, partial (sessions without an expiry are
  not in it). Sessions made before this revision have none and go by their age, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_session_expiry"
down_revision = "0018_token_overwrite"
branch_labels = None
depends_on = None

_EXPIRING = sa.text("expires_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("upload_sessions") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_upload_sessions_expiring",
        "upload_sessions",
        ["expires_at"],
        sqlite_where=_EXPIRING,
        postgresql_where=_EXPIRING,
    )


def downgrade() -> None:
    op.drop_index("ix_upload_sessions_expiring", table_name="upload_sessions")
    with op.batch_alter_table("upload_sessions") as batch:
        batch.drop_column("expires_at")
