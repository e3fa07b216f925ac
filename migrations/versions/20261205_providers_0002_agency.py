"""providers: proposed schema versions, published only when an operator approves them (issue 13)

Revision ID: providers_0002_agency
Revises: providers_0001
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'providers_0002_agency'
down_revision: str | Sequence[str] | None = 'providers_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('providers_schema_version',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('dataset_id', sa.String(length=100), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('json_schema', sa.JSON(), nullable=False),
    sa.Column('schema_sha256', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('proposed_by', sa.String(length=128), nullable=False),
    sa.Column('proposed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=128), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['dataset_id'], ['providers_dataset.id'], name=op.f('fk_providers_schema_version_dataset_id_providers_dataset')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_providers_schema_version')),
    sa.UniqueConstraint('dataset_id', 'version', name=op.f('uq_providers_schema_version_dataset_id_version'))
    )
    with op.batch_alter_table('providers_schema_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_providers_schema_version_dataset_id'), ['dataset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_providers_schema_version_status'), ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('providers_schema_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_providers_schema_version_status'))
        batch_op.drop_index(batch_op.f('ix_providers_schema_version_dataset_id'))

    op.drop_table('providers_schema_version')
