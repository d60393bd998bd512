"""test dose correction reason

A given test dose is corrected by a new row pointing at it (``corrects_id``); the new row
keeps why. Existing rows get the empty text. After this upgrade the application also adopts
clinical rows that older versions wrote without a complete audit entry (see
``pumpclinic.services.integrity``).

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN on SQLite too: batch mode would copy test_doses, which other rows
    # point at (see 0003).
    op.add_column(
        'test_doses',
        sa.Column('correction_reason', sa.Text(), server_default='', nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table('test_doses', schema=None) as batch_op:
        batch_op.drop_column('correction_reason')
