"""kernel: the record of operators' decisions (who, when, what, why)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mydata_decision",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("subject_type", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mydata_decision")),
    )
    with op.batch_alter_table("mydata_decision", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mydata_decision_decided_at"), ["decided_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_mydata_decision_subject_type"), ["subject_type"], unique=False)
        batch_op.create_index(batch_op.f("ix_mydata_decision_subject_id"), ["subject_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mydata_decision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mydata_decision_subject_id"))
        batch_op.drop_index(batch_op.f("ix_mydata_decision_subject_type"))
        batch_op.drop_index(batch_op.f("ix_mydata_decision_decided_at"))
    op.drop_table("mydata_decision")
