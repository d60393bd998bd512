"""screening details: stop cause, active illness, acknowledged start checks, dose appointment

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 15:31:36.077752

Generated with autogenerate, then adjusted by hand:

- Only new nullable or defaulted columns, so existing rows upgrade unchanged.
- On SQLite these are plain ``ALTER TABLE ... ADD COLUMN`` statements with their CHECK and
  foreign key inline. Batch mode would copy and drop ``screening_trials`` and
  ``test_doses``; SQLite refuses to drop a table other rows point at while foreign keys are
  on (they are, in a transaction), so a clinic with screening data could not upgrade.
- Autogenerate does not see CHECK constraints: ``stop_cause_valid`` is added here by hand.
- The boolean server default is the string '0' (false on SQLite and PostgreSQL alike).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pumpclinic.db.types


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STOP_CAUSE_CHECK = "stop_cause IS NULL OR stop_cause IN ('adverse-event', 'clinician')"


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.execute(
            "ALTER TABLE screening_trials ADD COLUMN stop_cause VARCHAR(16)"
            f" CONSTRAINT ck_screening_trials_stop_cause_valid CHECK ({STOP_CAUSE_CHECK})"
        )
        op.execute(
            "ALTER TABLE screening_trials ADD COLUMN active_illness BOOLEAN DEFAULT '0' NOT NULL"
        )
        op.execute("ALTER TABLE screening_trials ADD COLUMN start_checks_json TEXT")
        op.execute(
            "ALTER TABLE test_doses ADD COLUMN appointment_id INTEGER"
            " CONSTRAINT fk_test_doses_appointment_id_appointments"
            " REFERENCES appointments (id)"
        )
        return
    op.add_column('screening_trials', sa.Column('stop_cause', sa.String(length=16), nullable=True))
    op.add_column('screening_trials', sa.Column('active_illness', sa.Boolean(), server_default='0', nullable=False))
    op.add_column('screening_trials', sa.Column('start_checks_json', sa.Text(), nullable=True))
    op.create_check_constraint(
        op.f('ck_screening_trials_stop_cause_valid'), 'screening_trials', STOP_CAUSE_CHECK
    )
    op.add_column('test_doses', sa.Column('appointment_id', sa.Integer(), nullable=True))
    op.create_foreign_key(
        op.f('fk_test_doses_appointment_id_appointments'),
        'test_doses',
        'appointments',
        ['appointment_id'],
        ['id'],
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite cannot drop a column with a foreign key in place: batch mode copies the
        # table, which needs foreign keys off while observations point at test doses.
        with op.batch_alter_table('test_doses', schema=None) as batch_op:
            batch_op.drop_column('appointment_id')
        # SQLite (3.35+) drops these in place: no copy of the table.
        op.execute("ALTER TABLE screening_trials DROP COLUMN start_checks_json")
        op.execute("ALTER TABLE screening_trials DROP COLUMN active_illness")
        op.execute("ALTER TABLE screening_trials DROP COLUMN stop_cause")
        return
    op.drop_constraint(op.f('fk_test_doses_appointment_id_appointments'), 'test_doses', type_='foreignkey')
    op.drop_column('test_doses', 'appointment_id')
    op.drop_constraint(op.f('ck_screening_trials_stop_cause_valid'), 'screening_trials', type_='check')
    op.drop_column('screening_trials', 'start_checks_json')
    op.drop_column('screening_trials', 'active_illness')
    op.drop_column('screening_trials', 'stop_cause')
