"""consent: the transparency ledger (entries, stored subtrees, head, signed tree heads)

Revision ID: consent_0001
Revises: 0001
Create Date: 2026-11-24 10:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'consent_0001'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = ('consent',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('consent_ledger_entry',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('leaf_input', sa.LargeBinary(), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=True),
    sa.Column('consent_id', sa.String(length=128), nullable=True),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_consent_ledger_entry'))
    )
    with op.batch_alter_table('consent_ledger_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_ledger_entry_consent_id'), ['consent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_ledger_entry_subject'), ['subject'], unique=False)

    op.create_table('consent_ledger_node',
    sa.Column('last_seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('level', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('last_seq', 'level', name=op.f('pk_consent_ledger_node'))
    )
    head = op.create_table('consent_ledger_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('tree_size', sa.BigInteger(), nullable=False),
    sa.Column('frontier', sa.LargeBinary(), nullable=False),
    sa.Column('sth_tree_size', sa.BigInteger(), nullable=True),
    sa.Column('sth_timestamp', sa.String(length=32), nullable=True),
    sa.CheckConstraint('id = 1', name=op.f('ck_consent_ledger_head_singleton')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_ledger_head'))
    )
    # The head of the empty tree exists from the start, so every append can begin by locking it
    # and two first appends can never race to create it.
    op.bulk_insert(head, [{'id': 1, 'tree_size': 0, 'frontier': b'', 'sth_tree_size': None, 'sth_timestamp': None}])

    op.create_table('consent_signed_tree_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tree_size', sa.BigInteger(), nullable=False),
    sa.Column('root_hash', sa.LargeBinary(), nullable=False),
    sa.Column('timestamp', sa.String(length=32), nullable=False),
    sa.Column('jws', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_signed_tree_head'))
    )
    with op.batch_alter_table('consent_signed_tree_head', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_signed_tree_head_tree_size'), ['tree_size'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('consent_signed_tree_head', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_signed_tree_head_tree_size'))

    op.drop_table('consent_signed_tree_head')
    op.drop_table('consent_ledger_head')
    op.drop_table('consent_ledger_node')
    with op.batch_alter_table('consent_ledger_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_ledger_entry_subject'))
        batch_op.drop_index(batch_op.f('ix_consent_ledger_entry_consent_id'))

    op.drop_table('consent_ledger_entry')
