"""relying parties: the clients' registration access tokens (RFC 7592)

Revision ID: relying_parties_0002_rp
Revises: relying_parties_0001
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "relying_parties_0002_rp"
down_revision: str | Sequence[str] | None = "relying_parties_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "identity_0002"


def upgrade() -> None:
    op.create_table(
        "relying_parties_client_registration",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["identity_oauth_client.client_id"],
            name=op.f("fk_relying_parties_client_registration_client_id_identity_oauth_client"),
        ),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_relying_parties_client_registration")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_relying_parties_client_registration_token_sha256")),
    )


def downgrade() -> None:
    op.drop_table("relying_parties_client_registration")
