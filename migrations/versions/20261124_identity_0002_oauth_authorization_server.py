"""oauth authorization server

Revision ID: identity_0002
Revises: identity_0001
Create Date: 2026-11-24 10:41:12.779684
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'identity_0002'
down_revision: str | Sequence[str] | None = 'identity_0001'
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

    op.create_table('identity_oauth_code',
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('citizen_id', sa.String(length=36), nullable=False),
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
    sa.ForeignKeyConstraint(['citizen_id'], ['identity_citizen.id'], name=op.f('fk_identity_oauth_code_citizen_id_identity_citizen')),
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
    sa.Column('citizen_id', sa.String(length=36), nullable=False),
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
    sa.ForeignKeyConstraint(['citizen_id'], ['identity_citizen.id'], name=op.f('fk_identity_oauth_token_citizen_id_identity_citizen')),
    sa.ForeignKeyConstraint(['client_id'], ['identity_oauth_client.client_id'], name=op.f('fk_identity_oauth_token_client_id_identity_oauth_client')),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_identity_oauth_token'))
    )
    with op.batch_alter_table('identity_oauth_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_oauth_token_citizen_id'), ['citizen_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_identity_oauth_token_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_identity_oauth_token_code_hash'), ['code_hash'], unique=False)




def downgrade() -> None:

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
    with op.batch_alter_table('identity_oauth_jti', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_oauth_jti_expires_at'))

    op.drop_table('identity_oauth_jti')
    with op.batch_alter_table('identity_oauth_client', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_oauth_client_organisation_id'))

    op.drop_table('identity_oauth_client')

