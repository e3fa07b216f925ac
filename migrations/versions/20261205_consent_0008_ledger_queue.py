"""consent: the queue of ledger leaves waiting for the sequencer (docs/decisions/0011)

Revision ID: consent_0008_ledger_queue
Revises: consent_0007_ops
Create Date: 2026-12-05 12:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'consent_0008_ledger_queue'
down_revision: str | Sequence[str] | None = 'consent_0007_ops'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('consent_ledger_queue',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=True),
    sa.Column('consent_id', sa.String(length=128), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_ledger_queue'))
    )


def downgrade() -> None:
    # Queued entries are committed consent changes' entries: dropping them would lose them.
    queued = op.get_bind().execute(sa.text('SELECT count(*) FROM consent_ledger_queue')).scalar_one()
    if queued:
        raise RuntimeError(
            f'consent_ledger_queue holds {queued} entries not yet in the ledger; '
            'integrate them first (mydata ledger sequencer --once), then downgrade'
        )
    op.drop_table('consent_ledger_queue')
