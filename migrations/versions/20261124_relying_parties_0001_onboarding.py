"""relying parties: organisations, initial access tokens, services

Revision ID: relying_parties_0001
Revises: 0001
Create Date: 2026-11-24 11:03:53.177578
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'relying_parties_0001'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = ('relying_parties',)
depends_on: str | Sequence[str] | None = 'providers_0001'


def upgrade() -> None:
    op.create_table('relying_parties_organisation',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('registration_number', sa.String(length=8), nullable=False),
    sa.Column('contacts', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('suspended_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_relying_parties_organisation'))
    )
    with op.batch_alter_table('relying_parties_organisation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_relying_parties_organisation_registration_number'), ['registration_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_relying_parties_organisation_status'), ['status'], unique=False)

    op.create_table('relying_parties_initial_access_token',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('organisation_id', sa.String(length=64), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['organisation_id'], ['relying_parties_organisation.id'], name=op.f('fk_relying_parties_initial_access_token_organisation_id_relying_parties_organisation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_relying_parties_initial_access_token')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_relying_parties_initial_access_token_token_sha256'))
    )
    with op.batch_alter_table('relying_parties_initial_access_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_relying_parties_initial_access_token_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('relying_parties_service',
    sa.Column('id', sa.String(length=100), nullable=False),
    sa.Column('organisation_id', sa.String(length=64), nullable=False),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('purpose_zh', sa.Text(), nullable=False),
    sa.Column('purpose_en', sa.Text(), nullable=False),
    sa.Column('purpose_code', sa.String(length=16), nullable=False),
    sa.Column('retention_days', sa.Integer(), nullable=False),
    sa.Column('requested_level', sa.String(length=16), nullable=True),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['organisation_id'], ['relying_parties_organisation.id'], name=op.f('fk_relying_parties_service_organisation_id_relying_parties_organisation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_relying_parties_service'))
    )
    with op.batch_alter_table('relying_parties_service', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_relying_parties_service_organisation_id'), ['organisation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_relying_parties_service_status'), ['status'], unique=False)

    op.create_table('relying_parties_service_dataset',
    sa.Column('service_id', sa.String(length=100), nullable=False),
    sa.Column('dataset_id', sa.String(length=100), nullable=False),
    sa.Column('required', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['providers_dataset.id'], name=op.f('fk_relying_parties_service_dataset_dataset_id_providers_dataset')),
    sa.ForeignKeyConstraint(['service_id'], ['relying_parties_service.id'], name=op.f('fk_relying_parties_service_dataset_service_id_relying_parties_service')),
    sa.PrimaryKeyConstraint('service_id', 'dataset_id', name=op.f('pk_relying_parties_service_dataset'))
    )
    with op.batch_alter_table('relying_parties_service_dataset', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_relying_parties_service_dataset_dataset_id'), ['dataset_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('relying_parties_service_dataset', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_relying_parties_service_dataset_dataset_id'))

    op.drop_table('relying_parties_service_dataset')
    with op.batch_alter_table('relying_parties_service', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_relying_parties_service_status'))
        batch_op.drop_index(batch_op.f('ix_relying_parties_service_organisation_id'))

    op.drop_table('relying_parties_service')
    with op.batch_alter_table('relying_parties_initial_access_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_relying_parties_initial_access_token_organisation_id'))

    op.drop_table('relying_parties_initial_access_token')
    with op.batch_alter_table('relying_parties_organisation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_relying_parties_organisation_status'))
        batch_op.drop_index(batch_op.f('ix_relying_parties_organisation_registration_number'))

    op.drop_table('relying_parties_organisation')
