"""upload tokens say whether their uploads may replace an existing object

Revision ID: 0018_token_overwrite
Revises: 0017_delivery_attempts
Create Date: 2026-12-05 15:55:00

* ``upload_tokens.overwrite``: off (the default for new tokens, ``server_default`` false), an
  upload with the token to a key that exists is refused (409 ``key_exists``) and its commit is
  insert-only, so a browser holding a prefix token cannot replace other people's objects.
* Tokens issued before this revision get ``true``: they were issued, and may already be in a
  browser, under the old rule that uploads replace; switching them off would turn their
  in-flight uploads (an avatar token re-uploading ``avatars/u1.jpg``) into 409s the issuer never
  asked for. Tokens live at most a day (``MAX_TTL``), so the old rule dies out by itself.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_token_overwrite"
down_revision = "0017_delivery_attempts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("upload_tokens") as batch:
        batch.add_column(sa.Column("overwrite", sa.Boolean(), nullable=False, server_default=sa.false()))
    tokens = sa.table("upload_tokens", sa.column("overwrite", sa.Boolean()))
    op.execute(tokens.update().values(overwrite=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("upload_tokens") as batch:
        batch.drop_column("overwrite")
