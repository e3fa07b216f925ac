"""kernel: the mail outbox (notifications are queued with the change that causes them)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mydata_outbox",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mydata_outbox")),
    )
    op.create_index("ix_mydata_outbox_due", "mydata_outbox", ["status", "next_attempt_at"])
    op.create_index(op.f("ix_mydata_outbox_created_at"), "mydata_outbox", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_mydata_outbox_created_at"), table_name="mydata_outbox")
    op.drop_index("ix_mydata_outbox_due", table_name="mydata_outbox")
    op.drop_table("mydata_outbox")
