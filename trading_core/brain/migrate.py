"""Alembic, driven from code so it works from an installed package (no alembic.ini needed).

The schema is created only by migrations. Concurrent ``upgrade_to_head`` calls (a Dagster
process and Hamilton starting together) are serialized: on PostgreSQL by a transaction-level
advisory lock, on SQLite by the ``BEGIN IMMEDIATE`` write lock of the engine passed in.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Final

from sqlalchemy import Connection, Engine, text

if TYPE_CHECKING:
    from alembic.config import Config

# alembic is imported where it is used: it adds ~0.2 s to every process that opens the Brain
# Library (`coin-engine brain ls`), and only a migration or a schema check needs it

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
_PG_MIGRATION_LOCK_KEY: Final = 0x0B5A1_11B  # any constant shared by every migrating process


def alembic_config(connection: Connection | None = None) -> "Config":
    """An Alembic config pointing at the packaged migrations, optionally bound to a connection."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration shipped with this code."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: Engine) -> str:
    """``alembic upgrade head`` in one transaction; returns the revision reached."""
    from alembic import command

    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK_KEY}
            )
        command.upgrade(alembic_config(connection), "head")
    return head_revision()
