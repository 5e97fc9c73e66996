"""Engines and transactions for SQLite (embedded default) and PostgreSQL (psycopg2 only).

SQLite: WAL (readers never block the writer), a 30 s busy timeout, foreign keys on, and
write transactions opened with ``BEGIN IMMEDIATE`` so two writers queue on the lock instead of
failing when a read lock cannot be upgraded; this is SQLAlchemy's documented pysqlite recipe
("Serializable isolation / Savepoints / Transactional DDL"). PostgreSQL: pre-ping, a connect
timeout, and per-key row locks taken by the callers (``SELECT ... FOR UPDATE``).

Database errors leave this module translated into the project's error tree: unreachable or
locked -> :class:`BrainUnavailableError` (retryable), a lost race on a unique key or a
deadlock -> :class:`VersionConflictError` (retryable, after ``attempts`` tries), anything else
-> :class:`BrainLibraryError`. The DSN is only ever shown masked.
"""

import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from trading_core.config import mask_dsn
from trading_core.errors import (
    BrainLibraryError,
    BrainUnavailableError,
    ConfigError,
    VersionConflictError,
)

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

T = TypeVar("T")
SQLITE_BEGIN_OPTION: Final = "brain_sqlite_begin"
SQLITE_BUSY_TIMEOUT_S: Final = 30.0
PG_CONNECT_TIMEOUT_S: Final = 10
_PG_RETRYABLE_CODES: Final = {"23505", "40001", "40P01"}  # unique, serialization, deadlock
_MISSING_SCHEMA_HINTS: Final = ("no such table", "does not exist", "undefinedtable")


def parse_dsn(dsn: str) -> URL:
    """The DSN as a URL; ``postgresql://`` means psycopg2 (the project's one driver)."""
    try:
        url = make_url(dsn)
    except ArgumentError as exc:
        raise ConfigError(f"Brain Library DSN {mask_dsn(dsn)!r} is not a database URL") from exc
    backend, driver = url.get_backend_name(), url.get_driver_name()
    if backend == "postgresql":
        if "+" in url.drivername and driver != "psycopg2":
            raise ConfigError(
                f"Brain Library DSN driver {url.drivername!r}: allowed postgresql+psycopg2"
            )
        return url.set(drivername="postgresql+psycopg2")
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ConfigError(
                f"Brain Library DSN {dsn!r} is an in-memory SQLite database; "
                "use a file, e.g. sqlite:///data/brain/brain.db"
            )
        return url
    raise ConfigError(
        f"Brain Library DSN {mask_dsn(dsn)!r}: backend {backend!r}; allowed sqlite, postgresql"
    )


def _enable_wal(cursor: Any) -> None:
    """WAL mode (persistent in the file). Switching a fresh file's journal mode needs an
    exclusive lock and SQLite does not run the busy handler for it, so connections racing on a
    new database see "database is locked" at once: retry within the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_engine(url: URL) -> Engine:
    assert url.database is not None  # noqa: S101 - parse_dsn refused database-less URLs
    Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (pysqlite would otherwise BEGIN lazily).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _postgres_engine(url: URL) -> Engine:
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def create_brain_engine(dsn: str) -> Engine:
    """A SQLAlchemy engine for ``dsn`` (SQLite file: parent directories are created)."""
    url = parse_dsn(dsn)
    return _sqlite_engine(url) if url.get_backend_name() == "sqlite" else _postgres_engine(url)


def is_retryable_conflict(exc: DBAPIError) -> bool:
    """A lost race (unique key, serialization failure, deadlock) that a retry can win."""
    code = getattr(exc.orig, "pgcode", None)
    if code is not None:
        return code in _PG_RETRYABLE_CODES
    return isinstance(exc, IntegrityError) and "UNIQUE constraint failed" in str(exc.orig)


def translate_error(exc: DBAPIError, masked_dsn: str) -> Exception:
    """The project error for a database error (see the module docstring)."""
    detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    if any(hint in detail.lower() for hint in _MISSING_SCHEMA_HINTS):
        return BrainLibraryError(
            f"Brain Library at {masked_dsn} has no schema or an old one ({detail}); "
            "run BrainLibrary.migrate() / `coin-engine brain migrate` first"
        )
    if is_retryable_conflict(exc):
        return VersionConflictError(f"Brain Library at {masked_dsn}: concurrent write ({detail})")
    if isinstance(exc, OperationalError) or exc.connection_invalidated:
        return BrainUnavailableError(f"Brain Library at {masked_dsn} is unavailable: {detail}")
    return BrainLibraryError(f"Brain Library at {masked_dsn}: {detail}")


def dialect_insert(session: Session, entity: Any) -> "postgresql.Insert | sqlite.Insert":
    """INSERT with ``on_conflict_do_nothing`` for the session's backend (both dialects have it)."""
    # the dialect modules are imported here: the PostgreSQL one loads its async drivers' code
    # (~0.1 s), which a SQLite library never needs
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(entity)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(entity)


class Database:
    """An engine pair (reads, writes) and transaction scopes; safe to share between threads."""

    def __init__(self, dsn: str) -> None:
        self.masked_dsn = mask_dsn(dsn)
        self.engine = create_brain_engine(dsn)
        self.write_engine = self.engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def translated(self) -> Iterator[None]:
        """Database errors raised inside leave as the project's errors."""
        try:
            yield
        except DBAPIError as exc:
            raise translate_error(exc, self.masked_dsn) from exc

    @contextmanager
    def _scope(self, engine: Engine) -> Iterator[Session]:
        with (
            self.translated(),
            Session(engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read transaction (deferred on SQLite: never blocks the writer)."""
        with self._scope(self.engine) as session:
            yield session

    def write(self, work: Callable[[Session], T], *, attempts: int = 10) -> T:
        """Run ``work`` in one write transaction; retry it when it lost a race.

        ``work`` must be safe to re-run from scratch: the failed attempt was rolled back.
        """
        if attempts < 1:
            raise ValueError(f"attempts {attempts!r} must be >= 1")
        for attempt in range(1, attempts + 1):
            try:
                with self._scope(self.write_engine) as session:
                    return work(session)
            except VersionConflictError:
                if attempt == attempts:
                    raise
                # Jitter spreads the retries of writers that collided at the same instant.
                time.sleep(random.uniform(0.005, 0.02) * attempt)  # noqa: S311
        raise AssertionError("unreachable")  # pragma: no cover

    def dispose(self) -> None:
        self.engine.dispose()
