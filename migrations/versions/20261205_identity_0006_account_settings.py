"""identity: account settings (confirmed email address, language, notifications) and confirmation links

Revision ID: identity_0006
Revises: identity_0005
Create Date: 2026-12-05 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity_0006"
down_revision: str | Sequence[str] | None = "identity_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _citizen_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["citizen_id"],
        ["identity_citizen.id"],
        name=op.f(f"fk_{table}_citizen_id_identity_citizen"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "identity_account_settings",
        sa.Column("citizen_id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("email_confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("notify_delivery", sa.Boolean(), nullable=False),
        sa.Column("notify_download", sa.Boolean(), nullable=False),
        sa.Column("notify_verification", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _citizen_fk("identity_account_settings"),
        sa.PrimaryKeyConstraint("citizen_id", name=op.f("pk_identity_account_settings")),
    )
    op.create_table(
        "identity_email_confirmation",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("citizen_id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        _citizen_fk("identity_email_confirmation"),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_identity_email_confirmation")),
    )
    op.create_index(
        op.f("ix_identity_email_confirmation_citizen_id"), "identity_email_confirmation", ["citizen_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_identity_email_confirmation_citizen_id"), table_name="identity_email_confirmation")
    op.drop_table("identity_email_confirmation")
    op.drop_table("identity_account_settings")
