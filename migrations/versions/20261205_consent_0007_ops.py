"""consent: the results of full ledger verifications (for the operator console's ledger status)

Revision ID: consent_0007_ops
Revises: consent_0006
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'consent_0007_ops'
down_revision: str | Sequence[str] | None = 'consent_0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('consent_ledger_verification',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tree_size', sa.BigInteger(), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('failed_at', sa.String(length=200), nullable=True),
    sa.Column('problem', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_ledger_verification'))
    )
    with op.batch_alter_table('consent_ledger_verification', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_ledger_verification_verified_at'), ['verified_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('consent_ledger_verification', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_ledger_verification_verified_at'))

    op.drop_table('consent_ledger_verification')
