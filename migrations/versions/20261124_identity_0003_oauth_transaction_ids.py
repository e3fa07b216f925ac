"""oauth: pushed requests and interactions carry their transaction (consent) id

Revision ID: identity_0003
Revises: identity_0002
Create Date: 2026-11-24 11:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity_0003"
down_revision: str | Sequence[str] | None = "identity_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("identity_oauth_par", "identity_oauth_interaction")


def upgrade() -> None:
    for table in TABLES:
        # Pushed requests live 90 s and interactions 10 min: those in flight during the upgrade are
        # dropped (their citizens start again) rather than given a made-up transaction id.
        op.execute(sa.text(f"DELETE FROM {table}"))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("transaction_id", sa.String(length=64), nullable=False))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("transaction_id")
