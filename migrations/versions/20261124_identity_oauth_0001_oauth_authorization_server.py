"""oauth authorization server

Revision ID: identity_oauth_0001
Revises: 0001
Create Date: 2026-11-24 10:17:49.880289
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'identity_oauth_0001'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('identity_oauth_client',
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('organisation_id', sa.String(length=64), nullable=True),
    sa.Column('jwks', sa.JSON(), nullable=False),
    sa.Column('redirect_uris', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('client_id', name=op.f('pk_identity_oauth_client'))
    )
    with op.batch_alter_table('identity_oauth_client', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_oauth_client_organisation_id'), ['organisation_id'], unique=False)

    op.create_table('identity_oauth_jti',
    sa.Column('key', sa.String(length=320), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_identity_oauth_jti'))
    )
    with op.batch_alter_table('identity_oauth_jti', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_oauth_jti_expires_at'), ['expires_at'], unique=False)

    op.create_table('providers_agency',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_providers_agency'))
    )
    op.create_table('providers_operator_token',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_providers_operator_token')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_providers_operator_token_token_sha256'))
    )
    op.create_table('identity_oauth_code',
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('citizen_id', sa.String(length=64), nullable=False),
    sa.Column('redirect_uri', sa.Text(), nullable=False),
    sa.Column('scope', sa.String(length=200), nullable=False),
    sa.Column('nonce', sa.String(length=255), nullable=True),
    sa.Column('code_challenge', sa.String(length=128), nullable=False),
    sa.Column('code_challenge_method', sa.String(length=8), nullable=False),
    sa.Column('acr', sa.String(length=64), nullable=False),
    sa.Column('amr', sa.JSON(), nullable=False),
    sa.Column('auth_time', sa.BigInteger(), nullable=False),
    sa.Column('authorization_details', sa.JSON(), nullable=True),
    sa.Column('dpop_jkt', sa.String(length=64), nullable=True),
    sa.Column('transaction_id', sa.String(length=64), nullable=False),
    sa.Column('issued_at', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.Column('used_at', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['identity_oauth_client.client_id'], name=op.f('fk_identity_oauth_code_client_id_identity_oauth_client')),
    sa.PrimaryKeyConstraint('code_hash', name=op.f('pk_identity_oauth_code'))
    )
    with op.batch_alter_table('identity_oauth_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_oauth_code_citizen_id'), ['citizen_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_identity_oauth_code_client_id'), ['client_id'], unique=False)

    op.create_table('identity_oauth_interaction',
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('dpop_jkt', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.Column('completed_at', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['identity_oauth_client.client_id'], name=op.f('fk_identity_oauth_interaction_client_id_identity_oauth_client')),
    sa.PrimaryKeyConstraint('id_hash', name=op.f('pk_identity_oauth_interaction'))
    )
    with op.batch_alter_table('identity_oauth_interaction', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_oauth_interaction_client_id'), ['client_id'], unique=False)

    op.create_table('identity_oauth_par',
    sa.Column('request_uri_hash', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('dpop_jkt', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.Column('used_at', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['identity_oauth_client.client_id'], name=op.f('fk_identity_oauth_par_client_id_identity_oauth_client')),
    sa.PrimaryKeyConstraint('request_uri_hash', name=op.f('pk_identity_oauth_par'))
    )
    with op.batch_alter_table('identity_oauth_par', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_oauth_par_client_id'), ['client_id'], unique=False)

    op.create_table('identity_oauth_token',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('citizen_id', sa.String(length=64), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('jkt', sa.String(length=64), nullable=False),
    sa.Column('scope', sa.String(length=200), nullable=False),
    sa.Column('acr', sa.String(length=64), nullable=False),
    sa.Column('amr', sa.JSON(), nullable=False),
    sa.Column('auth_time', sa.BigInteger(), nullable=False),
    sa.Column('authorization_details', sa.JSON(), nullable=True),
    sa.Column('transaction_id', sa.String(length=64), nullable=False),
    sa.Column('issued_at', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.Column('revoked_at', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['identity_oauth_client.client_id'], name=op.f('fk_identity_oauth_token_client_id_identity_oauth_client')),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_identity_oauth_token'))
    )
    with op.batch_alter_table('identity_oauth_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_oauth_token_citizen_id'), ['citizen_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_identity_oauth_token_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_identity_oauth_token_code_hash'), ['code_hash'], unique=False)

    op.create_table('providers_provider',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('agency_id', sa.String(length=64), nullable=False),
    sa.Column('base_url', sa.String(length=500), nullable=False),
    sa.Column('jwks', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agency_id'], ['providers_agency.id'], name=op.f('fk_providers_provider_agency_id_providers_agency')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_providers_provider'))
    )
    with op.batch_alter_table('providers_provider', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_providers_provider_agency_id'), ['agency_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_providers_provider_status'), ['status'], unique=False)

    op.create_table('providers_dataset',
    sa.Column('id', sa.String(length=100), nullable=False),
    sa.Column('provider_id', sa.String(length=64), nullable=False),
    sa.Column('title_zh', sa.String(length=200), nullable=False),
    sa.Column('title_en', sa.String(length=200), nullable=False),
    sa.Column('description_zh', sa.Text(), nullable=False),
    sa.Column('description_en', sa.Text(), nullable=False),
    sa.Column('json_schema', sa.JSON(), nullable=False),
    sa.Column('schema_version', sa.Integer(), nullable=False),
    sa.Column('schema_sha256', sa.String(length=64), nullable=False),
    sa.Column('min_level', sa.String(length=16), nullable=False),
    sa.Column('citizen_downloadable', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['providers_provider.id'], name=op.f('fk_providers_dataset_provider_id_providers_provider')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_providers_dataset'))
    )
    with op.batch_alter_table('providers_dataset', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_providers_dataset_provider_id'), ['provider_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_providers_dataset_status'), ['status'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('providers_dataset', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_providers_dataset_status'))
        batch_op.drop_index(batch_op.f('ix_providers_dataset_provider_id'))

    op.drop_table('providers_dataset')
    with op.batch_alter_table('providers_provider', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_providers_provider_status'))
        batch_op.drop_index(batch_op.f('ix_providers_provider_agency_id'))

    op.drop_table('providers_provider')
    with op.batch_alter_table('identity_oauth_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_oauth_token_code_hash'))
        batch_op.drop_index(batch_op.f('ix_identity_oauth_token_client_id'))
        batch_op.drop_index(batch_op.f('ix_identity_oauth_token_citizen_id'))

    op.drop_table('identity_oauth_token')
    with op.batch_alter_table('identity_oauth_par', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_oauth_par_client_id'))

    op.drop_table('identity_oauth_par')
    with op.batch_alter_table('identity_oauth_interaction', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_oauth_interaction_client_id'))

    op.drop_table('identity_oauth_interaction')
    with op.batch_alter_table('identity_oauth_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_oauth_code_client_id'))
        batch_op.drop_index(batch_op.f('ix_identity_oauth_code_citizen_id'))

    op.drop_table('identity_oauth_code')
    op.drop_table('providers_operator_token')
    op.drop_table('providers_agency')
    with op.batch_alter_table('identity_oauth_jti', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_oauth_jti_expires_at'))

    op.drop_table('identity_oauth_jti')
    with op.batch_alter_table('identity_oauth_client', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_oauth_client_organisation_id'))

    op.drop_table('identity_oauth_client')

