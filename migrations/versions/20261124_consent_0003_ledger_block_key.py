"""consent: key the ledger's stored subtrees by one integer, last_seq * 64 + level

consent_0001 keyed them by the pair (last_seq, level). Selecting a proof's blocks by pair is a full
scan on SQLite, and selecting by last_seq alone reads O(log^2 n) rows; one integer key gives one
exact IN lookup on both databases and keeps the rows in the order appends create them
(docs/decisions/0005-transparency-ledger.md). Existing rows are converted, not rebuilt.

Revision ID: consent_0003
Revises: consent_0002
Create Date: 2026-11-24 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'consent_0003'
down_revision: str | Sequence[str] | None = 'consent_0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('consent_ledger_node', sa.Column('block', sa.BigInteger(), nullable=True))
    op.execute('UPDATE consent_ledger_node SET block = last_seq * 64 + level')
    # SQLite rebuilds the table here (batch mode); PostgreSQL alters it in place.
    with op.batch_alter_table('consent_ledger_node', schema=None) as batch_op:
        batch_op.drop_constraint('pk_consent_ledger_node', type_='primary')
        batch_op.drop_column('last_seq')
        batch_op.drop_column('level')
        batch_op.alter_column('block', existing_type=sa.BigInteger(), nullable=False)
        batch_op.create_primary_key('pk_consent_ledger_node', ['block'])


def downgrade() -> None:
    op.add_column('consent_ledger_node', sa.Column('last_seq', sa.BigInteger(), nullable=True))
    op.add_column('consent_ledger_node', sa.Column('level', sa.SmallInteger(), nullable=True))
    op.execute('UPDATE consent_ledger_node SET last_seq = block / 64, level = block % 64')
    with op.batch_alter_table('consent_ledger_node', schema=None) as batch_op:
        batch_op.drop_constraint('pk_consent_ledger_node', type_='primary')
        batch_op.drop_column('block')
        batch_op.alter_column('last_seq', existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column('level', existing_type=sa.SmallInteger(), nullable=False)
        batch_op.create_primary_key('pk_consent_ledger_node', ['last_seq', 'level'])
