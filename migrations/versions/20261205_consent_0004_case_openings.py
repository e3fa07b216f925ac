"""consent: private openings of the per-case subject commitments (ledger entry version 2)

Ledger entries from now on carry a per-case subject commitment instead of the citizen's keyed hash
(DESIGN §6.3, docs/decisions/0007-unlinkable-ledger-subjects.md). The entries already in the log
stay exactly as they are (append-only); only this private table is added.

Revision ID: consent_0004
Revises: consent_0003
Create Date: 2026-12-05 07:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'consent_0004'
down_revision: str | Sequence[str] | None = 'consent_0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('consent_case_opening',
    sa.Column('case_id', sa.String(length=128), nullable=False),
    sa.Column('subject_key', sa.String(length=64), nullable=False),
    sa.Column('salt', sa.LargeBinary(), nullable=False),
    sa.Column('commitment', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('case_id', name=op.f('pk_consent_case_opening'))
    )
    with op.batch_alter_table('consent_case_opening', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_case_opening_subject_key'), ['subject_key'], unique=False)


def downgrade() -> None:
    # The salts are the only way to open the commitments already in the log: a downgrade that
    # dropped them would leave those entries unprovable for their citizens forever.
    openings = op.get_bind().execute(sa.text('SELECT count(*) FROM consent_case_opening')).scalar_one()
    if openings:
        raise RuntimeError(
            f'consent_case_opening holds the openings of {openings} cases in the ledger; '
            'dropping them would make those entries unprovable: restore a backup instead of downgrading'
        )
    with op.batch_alter_table('consent_case_opening', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_case_opening_subject_key'))
    op.drop_table('consent_case_opening')
