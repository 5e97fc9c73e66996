"""Fixtures that run the Brain Library suite twice: on a SQLite file and on real PostgreSQL.

PostgreSQL: each test gets a fresh schema ``brain_test_<uuid>`` in database ``test`` (DSN from
``BRAIN_TEST_PG_DSN``, default ``postgresql+psycopg2://postgres@127.0.0.1:5432/test``), reached
through ``?options=-csearch_path%3D<schema>`` and dropped afterwards. If PostgreSQL is
unreachable the PostgreSQL half is skipped, unless ``CI=true``, where it fails.
"""

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from trading_core.brain import BrainLibrary, ModelKey, ModelVersion
from trading_core.events import DecisionEvent, EngineVote

PG_ADMIN_DSN = os.environ.get(
    "BRAIN_TEST_PG_DSN", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)
BTC_TREND_1H = ModelKey("BTC", "TREND", "1h")
ETH_RANGE_4H = ModelKey("ETH", "RANGE", "4h")
T0 = datetime(2025, 1, 15, 2, 0, 0, tzinfo=UTC)
SYMBOLS = ("BTC/USDT", "ETH/USDT")


@cache
def postgres_problem(dsn: str) -> str | None:
    """None when PostgreSQL at ``dsn`` answers, else why not (checked once per DSN)."""
    engine = create_engine(dsn, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        return str(exc.orig).strip().splitlines()[0]
    finally:
        engine.dispose()
    return None


def require_postgres(dsn: str = PG_ADMIN_DSN) -> None:
    """Skip the test when PostgreSQL is unreachable; fail it instead when ``CI=true``."""
    problem = postgres_problem(dsn)
    if problem is None:
        return
    message = f"PostgreSQL at {dsn} unreachable: {problem}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def pg_schema_dsn() -> Iterator[str]:
    """A DSN whose search_path is a fresh, empty schema (dropped after the test)."""
    require_postgres()
    schema = f"brain_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG_ADMIN_DSN}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))


@cache
def _admin_engine() -> Engine:
    """One pooled autocommit engine for creating and dropping the per-test schemas."""
    return create_engine(PG_ADMIN_DSN, isolation_level="AUTOCOMMIT")


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def brain_dsn(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A DSN for an empty Brain Library database: SQLite file or PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'brain' / 'brain.db'}"
    dsn: str = request.getfixturevalue("pg_schema_dsn")
    return dsn


class FakeClock:
    """A deterministic UTC clock: each call is one second after the previous one."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session (by the migrations), copied for each test."""
    path = tmp_path_factory.mktemp("brain_template") / "brain.db"
    library = BrainLibrary(f"sqlite:///{path}", path.parent / "artifacts")
    library.migrate()
    library.close()  # the last connection checkpoints the WAL into the file
    return path


@pytest.fixture
def brain(brain_dsn: str, tmp_path: Path, sqlite_template: Path) -> Iterator[BrainLibrary]:
    """A migrated library on both backends, with artifacts under tmp_path and a fake clock."""
    if brain_dsn.startswith("sqlite:///"):
        target = Path(brain_dsn.removeprefix("sqlite:///"))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sqlite_template, target)
    library = BrainLibrary(brain_dsn, tmp_path / "artifacts", clock=FakeClock())
    library.migrate()  # PostgreSQL: the real upgrade; SQLite copy: already at head, a no-op
    try:
        yield library
    finally:
        library.close()


def fake_artifact(tag: str) -> bytes:
    """Stand-in model bytes (UBJ object marker first); distinct per tag."""
    return b"{" + hashlib.sha256(tag.encode()).digest() * 8 + b"}"


def register(
    library: BrainLibrary,
    key: ModelKey = BTC_TREND_1H,
    tag: str = "a",
    *,
    sharpe: float = 1.0,
    created_at: datetime = T0,
) -> ModelVersion:
    """Register a distinct model for ``key`` (distinct ``tag`` -> distinct data hash)."""
    return library.register_model(
        key,
        fake_artifact(f"{key.slug}-{tag}"),
        metrics={"sharpe": sharpe, "oos_sharpe": sharpe, "hit_rate": 0.55},
        params={"max_depth": 4, "eta": 0.05},
        feature_list=["ret_1", "vol_24"],
        data_hash=f"data-{tag}",
        partition_date=date(2025, 1, 15),
        created_at=created_at,
    )


def make_event(symbol: str, hour: int, action: str = "hold", version: str = "m1") -> DecisionEvent:
    edge = {"buy": 12.0, "sell": -12.0, "hold": 0.0}[action]
    return DecisionEvent(
        timestamp=T0 + timedelta(hours=hour),
        symbol=symbol,
        regime="TREND",
        engine_votes=(EngineVote("trend_v1", 0.5, 0.8, 1.0), EngineVote("breakout", -0.1, 0.3)),
        consensus_score=0.3,
        action=action,
        expected_edge_bps=edge,
        costs_bps=4.0,
        net_edge_bps=edge - 4.0,
        risk_preset="balanced",
        model_version=version,
        reasons=("consensus",),
    )


def day_of_events() -> list[DecisionEvent]:
    actions = ("buy", "hold", "sell", "hold")
    return [make_event(s, h, actions[h % 4]) for s in SYMBOLS for h in range(12)]
