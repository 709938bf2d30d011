"""api keys: keys for the /v1 API and the upload tokens they issue

Revision ID: 0009_api_keys
Revises: 0008_notify
Create Date: 2026-12-05 14:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_api_keys"
down_revision = "0008_notify"
branch_labels = None
depends_on = None


def _bytewise(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length=length).with_variant(sa.String(length=length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("bucket_id", sa.Integer(), nullable=True),
        sa.Column("scopes", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["bucket_id"], ["buckets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_id"),
    )
    op.create_index(op.f("ix_api_keys_bucket_id"), "api_keys", ["bucket_id"], unique=False)
    op.create_table(
        "upload_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("bucket_id", sa.Integer(), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", _bytewise(1024), nullable=False),
        sa.Column("fixed_key", _bytewise(1024), nullable=True),
        sa.Column("max_size", sa.BigInteger(), nullable=True),
        sa.Column("content_types", sa.JSON(), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["api_key_id"], ["api_keys.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["bucket_id"], ["buckets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_upload_tokens_api_key_id"), "upload_tokens", ["api_key_id"], unique=False)
    op.create_index(op.f("ix_upload_tokens_bucket_id"), "upload_tokens", ["bucket_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_upload_tokens_bucket_id"), table_name="upload_tokens")
    op.drop_index(op.f("ix_upload_tokens_api_key_id"), table_name="upload_tokens")
    op.drop_table("upload_tokens")
    op.drop_index(op.f("ix_api_keys_bucket_id"), table_name="api_keys")
    op.drop_table("api_keys")
