"""row seals: refills, dose programs and appointments record their create in the row

A row of these three tables carries a keyed seal over its own values instead of a create
entry in the audit log that repeats them; row_seal_heads keeps, per table, the sealed row
count and the sum of the seals, sealed with the audit key, so that deleting a sealed row is
detected. The heads are made by the application, which holds the key, right after this
upgrade. Rows written before it keep their audit entries and are checked against them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 20:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEALED_TABLES = ('refills', 'dose_programs', 'appointments')


def upgrade() -> None:
    op.create_table('row_seal_heads',
    sa.Column('table_name', sa.String(length=64), nullable=False),
    sa.Column('row_count', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=32), nullable=False),
    sa.Column('seal', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('table_name', name=op.f('pk_row_seal_heads'))
    )
    for table in SEALED_TABLES:
        op.add_column(table, sa.Column('seal', sa.LargeBinary(length=16), nullable=True))


def downgrade() -> None:
    for table in SEALED_TABLES:
        # Both engines drop a column in place (SQLite since 3.35): no table rebuild, which
        # would lose the kept-forecast triggers.
        op.execute(f'ALTER TABLE {table} DROP COLUMN seal')
    op.drop_table('row_seal_heads')
