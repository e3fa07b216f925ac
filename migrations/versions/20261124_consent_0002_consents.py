"""consents

Revision ID: consent_0002
Revises: consent_0001
Create Date: 2026-11-24 11:06:43.532055
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'consent_0002'
down_revision: str | Sequence[str] | None = 'consent_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = ("identity_0002",)


def upgrade() -> None:

    op.create_table('consent_consent',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('organisation_id', sa.String(length=64), nullable=False),
    sa.Column('organisation_name', sa.String(length=200), nullable=False),
    sa.Column('service_id', sa.String(length=128), nullable=False),
    sa.Column('purpose', sa.Text(), nullable=False),
    sa.Column('retention', sa.String(length=64), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('datasets_required', sa.JSON(), nullable=False),
    sa.Column('datasets_optional', sa.JSON(), nullable=False),
    sa.Column('datasets_granted', sa.JSON(), nullable=True),
    sa.Column('citizen_id', sa.String(length=36), nullable=True),
    sa.Column('amr', sa.JSON(), nullable=True),
    sa.Column('delivery_attempts', sa.Integer(), nullable=False),
    sa.Column('delivery_outcomes', sa.JSON(), nullable=True),
    sa.Column('document_hashes', sa.JSON(), nullable=True),
    sa.Column('receipt', sa.Text(), nullable=True),
    sa.Column('receipt_id', sa.String(length=64), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('window_ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expired_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['citizen_id'], ['identity_citizen.id'], name=op.f('fk_consent_consent_citizen_id_identity_citizen')),
    sa.ForeignKeyConstraint(['client_id'], ['identity_oauth_client.client_id'], name=op.f('fk_consent_consent_client_id_identity_oauth_client')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_consent'))
    )
    with op.batch_alter_table('consent_consent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_consent_citizen_id'), ['citizen_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_consent_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_consent_organisation_id'), ['organisation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_consent_service_id'), ['service_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_consent_status'), ['status'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('consent_consent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_consent_status'))
        batch_op.drop_index(batch_op.f('ix_consent_consent_service_id'))
        batch_op.drop_index(batch_op.f('ix_consent_consent_organisation_id'))
        batch_op.drop_index(batch_op.f('ix_consent_consent_client_id'))
        batch_op.drop_index(batch_op.f('ix_consent_consent_citizen_id'))

    op.drop_table('consent_consent')

