"""garbage_blobs.lease_until: an in-flight upload's reservation is guarded by a lease, so replaced
and deleted versions can be reclaimed within a short grace

Revision ID: 0004_garbage_lease
Revises: 0003_access_key_unique
Create Date: 2026-12-05 12:00:00

Every garbage blob used to wait one long grace (6 h), because an upload's blob is recorded as
garbage before it is stored and the grace had to outlast the slowest put. Disks filled with dead
versions under overwrites. Reservations now carry their own deadline; everything else goes after
``garbage_grace_seconds``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_garbage_lease"
down_revision = "0003_access_key_unique"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("garbage_blobs") as batch_op:
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("garbage_blobs") as batch_op:
        batch_op.drop_column("lease_until")
