"""identity: citizens, staff roles, NHI cards, mobile devices and requests, eID nonces, login sessions

Revision ID: identity_0001
Revises: 0001
Create Date: 2026-11-24 10:18:10.267290
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity_0001"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("identity",)
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
        "identity_citizen",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("national_id", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_citizen")),
        sa.UniqueConstraint("national_id", name=op.f("uq_identity_citizen_national_id")),
    )
    op.create_table(
        "identity_staff_role",
        sa.Column("citizen_id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("organisation_id", sa.String(length=64), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('rp_developer', 'agency_officer', 'counter', 'operator')",
            name=op.f("ck_identity_staff_role_role"),
        ),
        _citizen_fk("identity_staff_role"),
        sa.PrimaryKeyConstraint("citizen_id", "role", "organisation_id", name=op.f("pk_identity_staff_role")),
    )
    op.create_table(
        "identity_nhi_card",
        sa.Column("card_number", sa.String(length=12), nullable=False),
        sa.Column("citizen_id", sa.String(length=36), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("recent_failures", sa.JSON(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        _citizen_fk("identity_nhi_card"),
        sa.PrimaryKeyConstraint("card_number", name=op.f("pk_identity_nhi_card")),
    )
    op.create_index(op.f("ix_identity_nhi_card_citizen_id"), "identity_nhi_card", ["citizen_id"])
    op.create_table(
        "identity_mobile_device",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("citizen_id", sa.String(length=36), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        _citizen_fk("identity_mobile_device"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_mobile_device")),
    )
    op.create_index(op.f("ix_identity_mobile_device_citizen_id"), "identity_mobile_device", ["citizen_id"])
    op.create_table(
        "identity_mobile_request",
        sa.Column("id", sa.String(length=43), nullable=False),
        sa.Column("citizen_id", sa.String(length=36), nullable=False),
        sa.Column("binding_code", sa.String(length=8), nullable=False),
        sa.Column("nonce", sa.String(length=43), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("device_id", sa.String(length=36), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        _citizen_fk("identity_mobile_request"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_mobile_request")),
    )
    op.create_index(op.f("ix_identity_mobile_request_citizen_id"), "identity_mobile_request", ["citizen_id"])
    op.create_index(op.f("ix_identity_mobile_request_status"), "identity_mobile_request", ["status"])
    op.create_table(
        "identity_eid_nonce",
        sa.Column("nonce", sa.String(length=43), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_identity_eid_nonce")),
    )
    op.create_index(op.f("ix_identity_eid_nonce_expires_at"), "identity_eid_nonce", ["expires_at"])
    op.create_table(
        "identity_login_session",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("citizen_id", sa.String(length=36), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("amr", sa.JSON(), nullable=False),
        sa.Column("auth_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=16), nullable=True),
        _citizen_fk("identity_login_session"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_login_session")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_identity_login_session_secret_hash")),
    )
    op.create_index(op.f("ix_identity_login_session_citizen_id"), "identity_login_session", ["citizen_id"])


def downgrade() -> None:
    op.drop_table("identity_login_session")
    op.drop_table("identity_eid_nonce")
    op.drop_table("identity_mobile_request")
    op.drop_table("identity_mobile_device")
    op.drop_table("identity_nhi_card")
    op.drop_table("identity_staff_role")
    op.drop_table("identity_citizen")
