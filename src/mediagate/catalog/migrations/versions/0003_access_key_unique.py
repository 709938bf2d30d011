"""an access key id belongs to one bucket: a unique index, not a check before the insert

Revision ID: 0003_access_key_unique
Revises: 0002
Create Date: 2026-12-05 11:40:00

Two ``bucket create`` runs with the same access key id could both pass the check and both insert;
a Wantu/ImageX request signed with that key would then reach either bucket. A partial unique index
on ``credentials(key_id) WHERE kind = 'aksk'`` makes the database refuse the second (SQLite and
PostgreSQL both support partial indexes). Operators and form secrets stay per bucket.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_access_key_unique"
down_revision = "0002"
branch_labels = None
depends_on = None

WHERE = sa.text("kind = 'aksk'")


def upgrade() -> None:
    op.create_index(
        "uq_credentials_access_key",
        "credentials",
        ["key_id"],
        unique=True,
        sqlite_where=WHERE,
        postgresql_where=WHERE,
    )


def downgrade() -> None:
    op.drop_index("uq_credentials_access_key", table_name="credentials")
