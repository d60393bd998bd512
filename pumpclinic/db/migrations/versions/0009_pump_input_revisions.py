"""pump input revisions counted by triggers; kept forecasts hold for a span of time

The database counts every change to the rows a pump's forecast is computed from (its fills,
programs, flex steps and the pump itself) in pump_input_revisions and deletes the pump's
kept forecast, by triggers, whoever writes. A kept forecast records the revision it was
computed at and the span of "as of" times it holds for, so that the alert list reads the
kept forecasts without reading every pump's fill and programs again. The kept forecasts of
0007 are dropped (derived data: computed again at the next read).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 18:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pumpclinic.db.types


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The triggers as pumpclinic.db.triggers makes them at this revision.
PUMP_OF_ROW = {
    "refills": (
        "{row}.pump_id",
        "(SELECT pump_id FROM refills WHERE id = {row}.corrects_refill_id)",
    ),
    "dose_programs": ("{row}.pump_id",),
    "flex_steps": ("(SELECT pump_id FROM dose_programs WHERE id = {row}.program_id)",),
    "implanted_pumps": ("{row}.id",),
}
OPERATIONS = {
    "refills": ("INSERT", "UPDATE", "DELETE"),
    "dose_programs": ("INSERT", "UPDATE", "DELETE"),
    "flex_steps": ("INSERT", "UPDATE", "DELETE"),
    "implanted_pumps": ("UPDATE",),
}
ROWS = {"INSERT": ("NEW",), "UPDATE": ("OLD", "NEW"), "DELETE": ("OLD",)}


def _body(table: str, rows: tuple[str, ...]) -> list[str]:
    statements = []
    for row in rows:
        for pump in PUMP_OF_ROW[table]:
            pump = pump.format(row=row)
            statements.append(
                "INSERT INTO pump_input_revisions (pump_id, revision)"
                f" SELECT {pump}, 1 WHERE {pump} IS NOT NULL"
                " ON CONFLICT (pump_id) DO UPDATE SET revision = pump_input_revisions.revision + 1"
            )
            statements.append(f"DELETE FROM pump_forecasts WHERE pump_id = {pump}")
    return statements


def _create_triggers(dialect: str) -> None:
    for table, operations in OPERATIONS.items():
        if dialect == "postgresql":
            branches = "\n".join(
                f"    IF TG_OP = '{operation}' THEN\n"
                + "".join(f"        {s};\n" for s in _body(table, ROWS[operation]))
                + "    END IF;"
                for operation in operations
            )
            op.execute(
                f"CREATE FUNCTION {table}_revise_pump_inputs() RETURNS trigger"
                # The tables it names are those of the schema it was made in, whatever
                # the writer's search_path.
                f" LANGUAGE plpgsql SET search_path FROM CURRENT"
                f" AS $$\nBEGIN\n{branches}\n    RETURN NULL;\nEND;\n$$"
            )
            op.execute(
                f"CREATE TRIGGER {table}_revise_pump_inputs"
                f" AFTER {' OR '.join(operations)} ON {table}"
                f" FOR EACH ROW EXECUTE FUNCTION {table}_revise_pump_inputs()"
            )
            continue
        for operation in operations:
            body = "".join(f"    {s};\n" for s in _body(table, ROWS[operation]))
            op.execute(
                f"CREATE TRIGGER {table}_{operation.lower()}_revises_pump_inputs"
                f" AFTER {operation} ON {table} FOR EACH ROW\nBEGIN\n{body}END"
            )


def _drop_triggers(dialect: str) -> None:
    for table, operations in OPERATIONS.items():
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_revise_pump_inputs ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {table}_revise_pump_inputs()")
            continue
        for operation in operations:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_{operation.lower()}_revises_pump_inputs")


def upgrade() -> None:
    op.drop_table('pump_forecasts')
    op.create_table('pump_forecasts',
    sa.Column('pump_id', sa.Integer(), nullable=False),
    sa.Column('inputs', sa.String(length=64), nullable=False),
    sa.Column('input_revision', sa.Integer(), nullable=False),
    sa.Column('inputs_from', pumpclinic.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('inputs_until', pumpclinic.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('daily_volume_ml', sa.Float(), nullable=False),
    sa.Column('alarm_at', pumpclinic.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('empty_at', pumpclinic.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('stability_limit_at', pumpclinic.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('refill_due', sa.Date(), nullable=True),
    sa.Column('days_to_alarm', sa.Float(), nullable=True),
    sa.Column('computed_at', pumpclinic.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['pump_id'], ['implanted_pumps.id'], name=op.f('fk_pump_forecasts_pump_id_implanted_pumps'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pump_id', name=op.f('pk_pump_forecasts'))
    )
    op.create_table('pump_input_revisions',
    sa.Column('pump_id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['pump_id'], ['implanted_pumps.id'], name=op.f('fk_pump_input_revisions_pump_id_implanted_pumps'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pump_id', name=op.f('pk_pump_input_revisions'))
    )
    _create_triggers(op.get_bind().dialect.name)


def downgrade() -> None:
    _drop_triggers(op.get_bind().dialect.name)
    op.drop_table('pump_input_revisions')
    op.drop_table('pump_forecasts')
    op.create_table('pump_forecasts',
    sa.Column('pump_id', sa.Integer(), nullable=False),
    sa.Column('inputs', sa.Text(), nullable=False),
    sa.Column('daily_volume_ml', sa.Float(), nullable=False),
    sa.Column('alarm_at', pumpclinic.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('empty_at', pumpclinic.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('stability_limit_at', pumpclinic.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('refill_due', sa.Date(), nullable=True),
    sa.Column('days_to_alarm', sa.Float(), nullable=True),
    sa.Column('computed_at', pumpclinic.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['pump_id'], ['implanted_pumps.id'], name=op.f('fk_pump_forecasts_pump_id_implanted_pumps'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pump_id', name=op.f('pk_pump_forecasts'))
    )
