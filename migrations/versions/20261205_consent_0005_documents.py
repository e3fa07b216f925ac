"""consent: the metadata and SHA-256 of the documents citizens download (never their data)

Revision ID: consent_0005
Revises: consent_0004
Create Date: 2026-12-05 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'consent_0005'
down_revision: str | Sequence[str] | None = 'consent_0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('consent_document',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('citizen_id', sa.String(length=36), nullable=False),
    sa.Column('datasets', sa.JSON(), nullable=False),
    sa.Column('format', sa.String(length=8), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('code_sha256', sa.String(length=64), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('valid_until', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['citizen_id'], ['identity_citizen.id'], name=op.f('fk_consent_document_citizen_id_identity_citizen')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_document')),
    sa.UniqueConstraint('code_sha256', name=op.f('uq_consent_document_code_sha256'))
    )
    with op.batch_alter_table('consent_document', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_document_citizen_id'), ['citizen_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('consent_document', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_document_citizen_id'))
    op.drop_table('consent_document')
