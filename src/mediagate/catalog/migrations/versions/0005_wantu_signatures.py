"""signature_uses: manage signatures seen recently and their method

Revision ID: 0005_wantu_signatures
Revises: 0004_garbage_lease
Create Date: 2026-12-05 11:30:00

A Wantu manage token signs no HTTP method; remembering each signature's first method until it
expires lets every node refuse the same signature replayed with another method.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_wantu_signatures"
down_revision = "0004_garbage_lease"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signature_uses",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    op.create_index(op.f("ix_signature_uses_expires_at"), "signature_uses", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_signature_uses_expires_at"), table_name="signature_uses")
    op.drop_table("signature_uses")
