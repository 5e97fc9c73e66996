"""Transactions and error translation of the Brain Library database layer, on SQLite and
PostgreSQL, with real constraint violations (no fakes)."""

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.integration.brain_fixtures import brain_dsn, pg_schema_dsn
from trading_core.brain.db import Database
from trading_core.errors import BrainLibraryError, VersionConflictError

# Fixtures are found as attributes of the test module: importing them registers them.
FIXTURES = (brain_dsn, pg_schema_dsn)


@pytest.fixture
def database(brain_dsn: str) -> Iterator[Database]:
    db = Database(brain_dsn)
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE parent (k INTEGER PRIMARY KEY)"))
        conn.execute(text("CREATE TABLE child (k INTEGER PRIMARY KEY REFERENCES parent (k))"))
        conn.execute(text("INSERT INTO parent (k) VALUES (1)"))
    yield db
    db.dispose()


def _insert_parent(keys: list[int], attempts: list[int]) -> Callable[[Session], int]:
    def work(session: Session) -> int:
        key = keys[min(len(attempts), len(keys) - 1)]
        attempts.append(key)
        session.execute(text("INSERT INTO parent (k) VALUES (:k)"), {"k": key})
        return key

    return work


def test_write_retries_a_lost_unique_race_then_succeeds(database: Database) -> None:
    attempts: list[int] = []
    assert database.write(_insert_parent([1, 2], attempts)) == 2
    assert attempts == [1, 2]
    with database.read() as session:
        assert session.execute(text("SELECT count(*) FROM parent")).scalar_one() == 2


def test_write_gives_up_with_retryable_conflict(database: Database) -> None:
    attempts: list[int] = []
    with pytest.raises(VersionConflictError) as info:
        database.write(_insert_parent([1], attempts), attempts=3)
    assert info.value.retryable and len(attempts) == 3


def test_foreign_key_violation_is_fatal_and_not_retried(database: Database) -> None:
    calls: list[int] = []

    def work(session: Session) -> None:
        calls.append(1)
        session.execute(text("INSERT INTO child (k) VALUES (99)"))

    with pytest.raises(BrainLibraryError) as info:
        database.write(work)
    assert not info.value.retryable and calls == [1]


def test_failed_write_rolls_back_everything(database: Database) -> None:
    def work(session: Session) -> None:
        session.execute(text("INSERT INTO parent (k) VALUES (5)"))
        session.execute(text("INSERT INTO child (k) VALUES (98)"))  # fails: no parent 98

    with pytest.raises(BrainLibraryError):
        database.write(work)
    with database.read() as session:
        assert session.execute(text("SELECT k FROM parent")).scalars().all() == [1]
