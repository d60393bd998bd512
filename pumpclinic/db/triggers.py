"""The database's own triggers that keep a pump's kept forecast honest.

A kept forecast (``pump_forecasts``) is computed from the pump's own rows — its fills, its
dose programs and their flex steps, the pump itself — and from the catalog and calendar
(checked by a digest at every read). Any insert, update or delete of one of those rows, by
PumpClinic or by any other program writing to the database, counts one more revision of the
pump's inputs in ``pump_input_revisions`` and deletes its kept forecast, in the writer's own
transaction. A kept forecast is used only while its revision is still the pump's: one
computed from rows read before a change (and stored after it) is never reused.

SQLite gets one trigger per table and operation; PostgreSQL a trigger function per table.
Both are created by the migrations (which keep their own copy of this text) and, for a
schema made from the models, by ``metadata.create_all`` through ``attach``.

What the triggers do not see: writes while they are dropped (SQLite's batch migrations
rebuild a table without its triggers: such a migration must create them again) or disabled
(on PostgreSQL, ``ALTER TABLE … DISABLE TRIGGER``, or a session in ``replica`` mode, which
fires only triggers enabled ``ALWAYS``). ``missing`` names them; while any is missing the
alert list trusts no kept forecast and ``keep_forecasts`` clears them, so that one kept
before a gap is not taken for current after it; ``pumpclinic audit-verify`` computes every
kept forecast again and compares.
"""

from __future__ import annotations

from sqlalchemy import DDL, Connection, MetaData, event, text

# Per table: how to find the pump (or pumps) a row belongs to, from NEW or OLD ("{row}").
# A refill that corrects another changes which of that refill's programs are in force.
PUMP_OF_ROW: dict[str, tuple[str, ...]] = {
    "refills": (
        "{row}.pump_id",
        "(SELECT pump_id FROM refills WHERE id = {row}.corrects_refill_id)",
    ),
    "dose_programs": ("{row}.pump_id",),
    "flex_steps": ("(SELECT pump_id FROM dose_programs WHERE id = {row}.program_id)",),
    "implanted_pumps": ("{row}.id",),
}
# Operations per table. A pump's insert needs nothing (it has no kept forecast yet) and its
# delete takes its revisions and forecast with it (ON DELETE CASCADE).
OPERATIONS: dict[str, tuple[str, ...]] = {
    "refills": ("INSERT", "UPDATE", "DELETE"),
    "dose_programs": ("INSERT", "UPDATE", "DELETE"),
    "flex_steps": ("INSERT", "UPDATE", "DELETE"),
    "implanted_pumps": ("UPDATE",),
}
_ROWS = {"INSERT": ("NEW",), "UPDATE": ("OLD", "NEW"), "DELETE": ("OLD",)}


def _revise(pump: str) -> list[str]:
    """The statements that count a change of ``pump``'s inputs (an SQL expression that may
    be NULL: then nothing is done)."""
    return [
        "INSERT INTO pump_input_revisions (pump_id, revision)"
        f" SELECT {pump}, 1 WHERE {pump} IS NOT NULL"
        " ON CONFLICT (pump_id) DO UPDATE SET revision = pump_input_revisions.revision + 1",
        f"DELETE FROM pump_forecasts WHERE pump_id = {pump}",
    ]


def _body(table: str, rows: tuple[str, ...]) -> list[str]:
    return [
        statement
        for row in rows
        for pump in PUMP_OF_ROW[table]
        for statement in _revise(pump.format(row=row))
    ]


def trigger_names(dialect: str) -> list[str]:
    if dialect == "postgresql":
        return [f"{table}_revise_pump_inputs" for table in OPERATIONS]
    return [
        f"{table}_{operation.lower()}_revises_pump_inputs"
        for table, operations in OPERATIONS.items()
        for operation in operations
    ]


def create_statements(dialect: str) -> list[str]:
    """The DDL that creates the triggers (SQLite or PostgreSQL)."""
    statements: list[str] = []
    for table, operations in OPERATIONS.items():
        if dialect == "postgresql":
            branches = "\n".join(
                f"    IF TG_OP = '{operation}' THEN\n"
                + "".join(f"        {s};\n" for s in _body(table, _ROWS[operation]))
                + "    END IF;"
                for operation in operations
            )
            statements.append(
                f"CREATE FUNCTION {table}_revise_pump_inputs() RETURNS trigger"
                # The tables it names are those of the schema it was made in, whatever
                # the writer's search_path.
                f" LANGUAGE plpgsql SET search_path FROM CURRENT"
                f" AS $$\nBEGIN\n{branches}\n    RETURN NULL;\nEND;\n$$"
            )
            statements.append(
                f"CREATE TRIGGER {table}_revise_pump_inputs"
                f" AFTER {' OR '.join(operations)} ON {table}"
                f" FOR EACH ROW EXECUTE FUNCTION {table}_revise_pump_inputs()"
            )
            continue
        for operation in operations:
            body = "".join(f"    {s};\n" for s in _body(table, _ROWS[operation]))
            statements.append(
                f"CREATE TRIGGER {table}_{operation.lower()}_revises_pump_inputs"
                f" AFTER {operation} ON {table} FOR EACH ROW\nBEGIN\n{body}END"
            )
    return statements


def drop_statements(dialect: str) -> list[str]:
    if dialect == "postgresql":
        return [
            statement
            for table in OPERATIONS
            for statement in (
                f"DROP TRIGGER IF EXISTS {table}_revise_pump_inputs ON {table}",
                f"DROP FUNCTION IF EXISTS {table}_revise_pump_inputs()",
            )
        ]
    return [f"DROP TRIGGER IF EXISTS {name}" for name in trigger_names(dialect)]


def attach(metadata: MetaData) -> None:
    """Create the triggers at the end of ``metadata.create_all`` (once every table they
    name exists), and drop them first in ``drop_all``."""
    for dialect in ("sqlite", "postgresql"):
        for statement in create_statements(dialect):
            event.listen(metadata, "after_create", _ddl(statement, dialect))
        for statement in drop_statements(dialect):
            event.listen(metadata, "before_drop", _ddl(statement, dialect))


def _ddl(statement: str, dialect: str) -> DDL:
    return DDL(statement).execute_if(dialect=dialect)  # type: ignore[no-untyped-call]


def in_place(connection: Connection) -> bool:
    """Whether every trigger is there as PumpClinic creates it (see ``missing``)."""
    return not missing(connection)


def missing(connection: Connection) -> list[str]:
    """The triggers that are not there as PumpClinic creates them: absent, on SQLite
    replaced by another body under the same name, on PostgreSQL disabled or firing only
    in replica mode."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        wanted = {(table, f"{table}_revise_pump_inputs") for table in OPERATIONS}
        rows = connection.execute(
            text(
                "SELECT c.relname, t.tgname FROM pg_trigger t"
                " JOIN pg_class c ON c.oid = t.tgrelid"
                " WHERE t.tgenabled IN ('O', 'A') AND t.tgrelid IN ("
                + ", ".join(f"to_regclass('{table}')" for table in OPERATIONS)
                + ")"
            )
        )
        found = {(table, name) for table, name in rows}
        return sorted(name for _table, name in wanted - found)
    # The text SQLite keeps of each trigger is the statement that created it.
    wanted_text = {
        statement.split()[2]: _words(statement) for statement in create_statements(dialect)
    }
    rows = connection.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
    kept_text = {name: _words(sql or "") for name, sql in rows}
    return sorted(name for name, words in wanted_text.items() if kept_text.get(name) != words)


def _words(statement: str) -> str:
    return " ".join(statement.split())
