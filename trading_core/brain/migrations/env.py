"""Alembic environment of the Brain Library.

The product runs migrations through :func:`trading_core.brain.migrate.upgrade_to_head`, which
passes an open connection in ``config.attributes["connection"]``. For developers, a
``sqlalchemy.url`` main option (see ``alembic.ini`` next to this file) works too.
"""

from alembic import context
from sqlalchemy import Connection, create_engine

from trading_core.brain.schema import Base

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "no connection: use trading_core.brain.migrate.upgrade_to_head(engine) "
            "or set sqlalchemy.url"
        )
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported for the Brain Library")
_run_online()
