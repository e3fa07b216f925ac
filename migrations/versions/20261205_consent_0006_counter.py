"""consent: counter verification (臨櫃核驗): the uses and each clerk's wrong-entry lock

Revision ID: consent_0006
Revises: consent_0005
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'consent_0006'
down_revision: str | Sequence[str] | None = 'consent_0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('consent_counter_use',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('citizen_id', sa.String(length=36), nullable=False),
    sa.Column('datasets', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('code_sha256', sa.String(length=64), nullable=False),
    sa.Column('page_key', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('clerk_id', sa.String(length=36), nullable=True),
    sa.Column('organisation_id', sa.String(length=64), nullable=True),
    sa.Column('organisation_name_zh', sa.String(length=200), nullable=True),
    sa.Column('organisation_name_en', sa.String(length=200), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('confirmation_sha256', sa.String(length=64), nullable=True),
    sa.Column('confirmation_jwe', sa.Text(), nullable=True),
    sa.Column('shown_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('view_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('offered', 'claimed', 'shown', 'cancelled', 'void')", name=op.f('ck_consent_counter_use_status')),
    sa.ForeignKeyConstraint(['citizen_id'], ['identity_citizen.id'], name=op.f('fk_consent_counter_use_citizen_id_identity_citizen')),
    sa.ForeignKeyConstraint(['clerk_id'], ['identity_citizen.id'], name=op.f('fk_consent_counter_use_clerk_id_identity_citizen')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_counter_use')),
    sa.UniqueConstraint('code_sha256', name=op.f('uq_consent_counter_use_code_sha256'))
    )
    with op.batch_alter_table('consent_counter_use', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_counter_use_citizen_id'), ['citizen_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_counter_use_clerk_id'), ['clerk_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_counter_use_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('consent_counter_clerk_lock',
    sa.Column('clerk_id', sa.String(length=36), nullable=False),
    sa.Column('recent_failures', sa.JSON(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['clerk_id'], ['identity_citizen.id'], name=op.f('fk_consent_counter_clerk_lock_clerk_id_identity_citizen')),
    sa.PrimaryKeyConstraint('clerk_id', name=op.f('pk_consent_counter_clerk_lock'))
    )


def downgrade() -> None:
    op.drop_table('consent_counter_clerk_lock')
    with op.batch_alter_table('consent_counter_use', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_counter_use_organisation_id'))
        batch_op.drop_index(batch_op.f('ix_consent_counter_use_clerk_id'))
        batch_op.drop_index(batch_op.f('ix_consent_counter_use_citizen_id'))
    op.drop_table('consent_counter_use')
