"""identity: unknown NHI card numbers lock like real ones; mobile ID requests for unknown IDs

Revision ID: identity_0005
Revises: identity_0004
Create Date: 2026-12-05 07:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity_0005"
down_revision: str | Sequence[str] | None = "identity_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "identity_nhi_unknown_card",
        sa.Column("card_number", sa.String(length=12), nullable=False),
        sa.Column("recent_failures", sa.JSON(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("card_number", name=op.f("pk_identity_nhi_unknown_card")),
    )
    op.create_index(op.f("ix_identity_nhi_unknown_card_updated_at"), "identity_nhi_unknown_card", ["updated_at"])
    # A request for a national ID without an account or a phone has no citizen.
    with op.batch_alter_table("identity_mobile_request", schema=None) as batch_op:
        batch_op.alter_column("citizen_id", existing_type=sa.String(length=36), nullable=True)


def downgrade() -> None:
    # Requests live two minutes: those without a citizen are dropped rather than given one.
    op.execute(sa.text("DELETE FROM identity_mobile_request WHERE citizen_id IS NULL"))
    with op.batch_alter_table("identity_mobile_request", schema=None) as batch_op:
        batch_op.alter_column("citizen_id", existing_type=sa.String(length=36), nullable=False)
    op.drop_index(op.f("ix_identity_nhi_unknown_card_updated_at"), table_name="identity_nhi_unknown_card")
    op.drop_table("identity_nhi_unknown_card")
