"""Alembic environment: the engine is passed in by pumpclinic.db.engine.alembic_config."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, create_engine, text

from pumpclinic.db.engine import make_engine
from pumpclinic.db.models import Base

config = context.config
target_metadata = Base.metadata
# Any constant of our own: the PostgreSQL advisory lock held while one workstation upgrades.
UPGRADE_LOCK_ID = 0x50554D50  # "PUMP"


def _engine() -> Engine:
    engine: Engine | None = config.attributes.get("engine")
    if engine is not None:
        return engine
    url = config.get_main_option("sqlalchemy.url")
    return make_engine(url) if url else create_engine("sqlite://")


def run_migrations_online() -> None:
    with _engine().connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,  # SQLite cannot ALTER most things
            compare_type=True,
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Several workstations may start at once after an update: one upgrades, the
                # others wait here, then find the schema already at head (the migrations run
                # in one transaction, so nobody sees half of them).
                connection.execute(text(f"SELECT pg_advisory_xact_lock({UPGRADE_LOCK_ID})"))
            context.run_migrations()
        connection.commit()


run_migrations_online()
