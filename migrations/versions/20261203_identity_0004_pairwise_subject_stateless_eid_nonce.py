"""oauth: codes and tokens carry their pairwise subject; eID nonces are no longer stored

Revision ID: identity_0004
Revises: identity_0003
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity_0004"
down_revision: str | Sequence[str] | None = "identity_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("identity_oauth_code", "identity_oauth_token")


def upgrade() -> None:
    for table in TABLES:
        # Codes live 60 s and tokens 10 min, and the subject cannot be computed here (it needs the
        # pairwise secret): those in flight during the upgrade are dropped, and their relying
        # parties start again, rather than left without a subject.
        op.execute(sa.text(f"DELETE FROM {table}"))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("subject", sa.String(length=64), nullable=False))
    # eID nonces are now authenticated with a MAC instead of stored; a used one is remembered in
    # identity_oauth_jti, the table of every other single-use identifier.
    op.drop_table("identity_eid_nonce")


def downgrade() -> None:
    op.create_table(
        "identity_eid_nonce",
        sa.Column("nonce", sa.String(length=43), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_identity_eid_nonce")),
    )
    op.create_index(op.f("ix_identity_eid_nonce_expires_at"), "identity_eid_nonce", ["expires_at"], unique=False)
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("subject")
