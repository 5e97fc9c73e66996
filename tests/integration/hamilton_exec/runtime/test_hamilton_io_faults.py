"""I/O faults never stall a tick and never lose an event; a corrupt newest release never leaves
Hamilton without the last good one.

Real databases: PostgreSQL (a fresh schema per test on 127.0.0.1:5432; a second session holding
``LOCK TABLE decision_events IN ACCESS EXCLUSIVE MODE`` hangs every event write, and
``default_transaction_read_only`` refuses them) and SQLite (``PRAGMA query_only``: "attempt to
write a readonly database"). Real releases: XGBoost models trained on the synthetic market; the
broken ones hold registered artifacts that were then altered, removed or never were a model.
"""

import asyncio
import errno
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import create_engine, event, text

from hamilton_exec.accounting.event_store import EventSink, Outcome
from hamilton_exec.runtime.release_sensor import ReleaseSensor
from hamilton_exec.runtime.service import HamiltonService
from hamilton_exec.runtime.wiring import build_service
from hamilton_exec.settings import HamiltonSettings, ReplayWindow
from hamilton_exec.telemetry.hamilton_metrics import HamiltonMetrics
from hamilton_exec.tick.hamilton_engine import HamiltonEngine, TickReport
from tests.integration.brain_fixtures import T0, make_event, pg_schema_dsn
from tests.integration.hamilton_fixtures import (
    corrupt_artifact,
    full_history_symbols,
    hamilton_config,
    make_release,
    market,
    train_models,
)
from trading_core.brain import BrainLibrary, ModelKey, ModelVersion
from trading_core.config.models import EngineConfig
from trading_core.engines import ML_INPUT_COLUMNS
from trading_core.market.synthetic import SyntheticMarket

__all__ = ["pg_schema_dsn"]  # the fixture, used by name

Logs = list[dict[str, Any]]


def _events(n: int, symbol: str = "BTC/USDT", start: int = 0) -> list[Any]:
    return [make_event(symbol, hour) for hour in range(start, start + n)]


def _sink_library(dsn: str, tmp: Path) -> BrainLibrary:
    library = BrainLibrary(dsn, tmp / "artifacts")
    library.migrate()
    return library


class TableLock:
    """A second PostgreSQL session that holds ACCESS EXCLUSIVE on ``decision_events``: every
    write (and read) of the events hangs until :meth:`release`."""

    def __init__(self, dsn: str) -> None:
        self.engine = create_engine(dsn)
        self.conn = self.engine.connect()
        self._lock = threading.Lock()
        self.held = False

    def hold(self) -> None:
        with self._lock:
            self.conn.execute(text("LOCK TABLE decision_events IN ACCESS EXCLUSIVE MODE"))
            self.held = True

    def release(self) -> None:
        with self._lock:
            if self.held:
                self.conn.rollback()
                self.held = False

    def close(self) -> None:
        self.release()
        self.conn.close()
        self.engine.dispose()


@pytest.fixture
def table_lock(pg_schema_dsn: str) -> Iterator[Callable[[], TableLock]]:
    made: list[TableLock] = []

    def make() -> TableLock:
        made.append(TableLock(pg_schema_dsn))
        return made[-1]

    yield make
    for lock in made:
        lock.close()


def _drain(sink: EventSink, deadline_s: float = 20.0) -> None:
    """Flush until the spool is empty (a write left hanging may still be finishing)."""
    end = time.monotonic() + deadline_s
    while sink.flush(timeout_s=5.0).spooled and time.monotonic() < end:
        time.sleep(0.05)
    assert sink.spool_depth == 0


# --- 1. a hung database ---------------------------------------------------------------------


@pytest.mark.postgres
def test_hung_postgres_flush_spools_after_timeout_then_drains_once(
    pg_schema_dsn: str, table_lock: Callable[[], TableLock], tmp_path: Path
) -> None:
    library = _sink_library(pg_schema_dsn, tmp_path)
    spooled: list[int] = []
    sink = EventSink(library, tmp_path / "spool.jsonl", on_spool=spooled.append)
    for item in _events(10):
        sink.add_event(item, release_id=None, shadow=False)
    lock = table_lock()
    lock.hold()
    started = time.perf_counter()
    result = sink.flush(timeout_s=0.3)
    waited = time.perf_counter() - started
    assert 0.3 <= waited < 1.0  # the timeout, not the database, ended the wait
    assert result.spooled == 10 and sink.spooled() == 10 and spooled == [10]
    for item in _events(5, start=10):  # still hung: the write in flight is not waited for
        sink.add_event(item, release_id=None, shadow=False)
    started = time.perf_counter()
    assert sink.flush(timeout_s=0.3).spooled == 15
    assert time.perf_counter() - started < 0.2
    sink.request_flush(timeout_s=0.3)
    started = time.perf_counter()  # a stop while hung: bounded, and everything is on disk
    assert sink.close(timeout_s=0.3).spooled == 15 == EventSink(None, sink.spool_path).spooled()
    assert time.perf_counter() - started < 1.0
    lock.release()  # the hung write goes through now; its records are in the spool as well
    _drain(sink)
    stored = library.query_decision_events()
    assert len(stored) == 15 and len({e["event_id"] for e in stored}) == 15
    assert not sink.spool_path.exists()
    library.close()


def _pg_config(tmp: Path, dsn: str, **extra: Any) -> EngineConfig:
    versioning = {"storage_path": str(tmp / "artifacts"), "brain_library_dsn": dsn}
    return hamilton_config(
        tmp, training={"model_versioning": versioning}, hamilton={"flush_timeout_s": 0.8}, **extra
    )


def _world(config: EngineConfig, days: int = 1) -> tuple[SyntheticMarket, tuple[str, ...], Any]:
    source = market(config)
    symbols = tuple(full_history_symbols(source)[:2])
    library = BrainLibrary.from_config(config)
    library.migrate()
    release = make_release(
        library, config, source, symbols, train_end=source.end - timedelta(days=days + 1)
    )
    return source, symbols, release


def _replay(
    config: EngineConfig, source: SyntheticMarket, symbols: Sequence[str], **kw: Any
) -> HamiltonSettings:
    speed = kw.pop("speed", 0.0)
    window = ReplayWindow(source.end - timedelta(days=1), source.end, speed)
    return HamiltonSettings.from_config(
        config, symbols=tuple(symbols), replay=window, metrics_port=None, health_port=None, **kw
    )


def _timed_ticks(service: HamiltonService) -> list[float]:
    durations: list[float] = []
    tick = service._tick

    def timed(item: Any) -> TickReport:
        started = time.perf_counter()
        try:
            return tick(item)
        finally:
            durations.append(time.perf_counter() - started)

    service._tick = timed  # type: ignore[method-assign,assignment]
    return durations


@pytest.mark.postgres
def test_tick_with_hung_database_returns_at_once_and_no_event_is_lost(
    pg_schema_dsn: str, table_lock: Callable[[], TableLock], tmp_path: Path
) -> None:
    config = _pg_config(tmp_path, pg_schema_dsn)
    source, symbols, release = _world(config)
    library = BrainLibrary.from_config(config)
    settings = _replay(config, source, symbols, speed=36_000.0)  # a 1h bar every 0.1 s
    service = build_service(config, settings, library=library, source=source).service
    durations, hung = _timed_ticks(service), table_lock()
    safety = threading.Timer(8.0, hung.release)  # were a tick to wait, the test must end

    def on_tick(_: TickReport) -> None:
        if service.summary.ticks == 3:
            hung.hold()
            safety.start()
        elif service.summary.ticks == 20:
            hung.release()

    service.on_tick = on_tick
    with structlog.testing.capture_logs() as logs:
        summary = asyncio.run(service.run())
    safety.cancel()
    assert summary.ticks == 24
    assert max(durations[3:20]) < 0.4, durations  # 0.8 s flush timeout; the lock held ~1.7 s
    spools = [e for e in logs if e["event"] == "events_spooled"]
    assert spools and spools[0]["reason"] == "timeout"
    stored = library.query_decision_events()
    assert len(stored) == 24 * len(symbols) == len({e["event_id"] for e in stored})
    assert {e["release_id"] for e in stored} == {release.id}
    assert not settings.events_spool.exists()
    library.close()


# --- 2. a database that refuses writes ------------------------------------------------------


@pytest.mark.postgres
def test_read_only_postgres_spools_at_shutdown_and_next_start_drains(
    pg_schema_dsn: str, tmp_path: Path
) -> None:
    config = _pg_config(tmp_path, pg_schema_dsn)
    source, symbols, release = _world(config)
    read_only = BrainLibrary(
        f"{pg_schema_dsn}%20-cdefault_transaction_read_only%3Don", tmp_path / "artifacts"
    )
    first = _replay(config, source, symbols, max_bars=6)
    with structlog.testing.capture_logs() as logs:
        stopped = asyncio.run(
            build_service(config, first, library=read_only, source=source).service.run()
        )
    assert stopped.ticks == 6
    assert not read_only.query_decision_events()
    errors = {e.get("error") for e in logs if e["event"] == "events_spooled"}
    assert "BrainLibraryError" in errors  # "cannot execute INSERT in a read-only transaction"
    kinds = [json.loads(line)["kind"] for line in first.events_spool.read_text().splitlines()]
    assert kinds.count("event") == 6 * len(symbols)  # all on disk at the stop, none lost
    read_only.close()
    library = BrainLibrary.from_config(config)
    prepared = build_service(
        config, _replay(config, source, symbols), library=library, source=source
    )
    resumed = asyncio.run(prepared.service.run(after_ms=prepared.after_ms))
    assert resumed.ticks == 24 - 6
    stored = library.query_decision_events()
    assert len(stored) == 24 * len(symbols) == len({e["event_id"] for e in stored})
    assert {e["release_id"] for e in stored} == {release.id}
    assert not first.events_spool.exists()
    library.close()


def test_sqlite_read_only_spooled_by_close_then_drained_by_next_sink(tmp_path: Path) -> None:
    dsn = f"sqlite:///{tmp_path / 'brain.db'}"
    library = _sink_library(dsn, tmp_path)

    @event.listens_for(library.engine, "connect")
    def _query_only(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.execute("PRAGMA query_only = ON")

    library.engine.dispose()  # new connections: read-only
    spool = tmp_path / "spool.jsonl"
    sink = EventSink(library, spool)
    for item in _events(4):
        sink.add_event(item, release_id=None, shadow=False)
    sink.request_flush(timeout_s=2.0)
    for item in _events(3, start=4):
        sink.add_event(item, release_id=None, shadow=False)
    assert sink.close(timeout_s=2.0).spooled == 7  # the stop's last flush
    assert EventSink(None, spool).spooled() == 7 and not library.query_decision_events()
    library.close()
    writable = BrainLibrary(dsn, tmp_path / "artifacts")
    restarted = EventSink(writable, spool)
    assert restarted.spool_depth == 7
    restarted.request_flush()
    assert restarted.wait_idle(10.0)
    assert restarted.spool_depth == 0 and len(writable.query_decision_events()) == 7
    writable.close()


class _FullDisk(BrainLibrary):
    """A library whose database volume is full (any non-database failure of a write)."""

    full = True

    def append_decision_events(self, *args: Any, **kwargs: Any) -> int:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().append_decision_events(*args, **kwargs)


def test_any_write_failure_spools_and_refused_outcome_alone_is_deferred(tmp_path: Path) -> None:
    library = _FullDisk(f"sqlite:///{tmp_path / 'brain.db'}", tmp_path / "artifacts")
    library.migrate()
    spooled: list[int] = []
    depth: list[int] = []
    sink = EventSink(
        library, tmp_path / "spool.jsonl", on_spool=spooled.append, on_depth=depth.append
    )
    for item in _events(3):
        sink.add_event(item, release_id=None, shadow=False)
    orphan = Outcome("no-such-event", 100.0, 1.0, 0.1, T0)
    sink.add_outcome(orphan)
    assert sink.flush().spooled == 4 and spooled == [4] and depth == [4]
    library.full = False
    result = sink.flush()  # the events go; the outcome's event is unknown: it alone waits
    assert (result.events_written, result.spooled) == (3, 1)
    assert spooled == [4] and depth == [4, 1]  # a data refusal is not a failed write
    kept = json.loads(sink.spool_path.read_text())
    assert kept["kind"] == "outcome" and kept["outcome"]["event_id"] == orphan.event_id
    assert len(library.query_decision_events()) == 3
    library.close()


# --- 3. a corrupt newest release ------------------------------------------------------------


def _broken_release(
    library: BrainLibrary, coin: str, day: date, how: str, tag: str
) -> tuple[int, ModelVersion]:
    """A release of one model whose artifact is corrupted, removed or not a model at all."""
    blob = b"not an xgboost model " + tag.encode()
    model = library.register_model(
        ModelKey(coin, "TREND", "1h"),
        blob,
        metrics={"sharpe": 1.0},
        params={},
        feature_list=list(ML_INPUT_COLUMNS),
        data_hash=f"broken-{tag}",
        partition_date=day,
        created_at=T0,
    )
    if how == "checksum_mismatch":
        corrupt_artifact(library, model)
    elif how == "artifact_missing":
        library.artifacts.path_for(model.artifact_sha256).unlink()
    release = library.create_release(day, production=[model.name], created_by="tests")
    return release.id, model


def test_corrupt_latest_release_serves_last_good_one_and_newer_good_one_loads(
    tmp_path: Path,
) -> None:
    config = hamilton_config(tmp_path)
    source = market(config)
    symbols = tuple(full_history_symbols(source)[:1])
    library = BrainLibrary.from_config(config)
    library.migrate()
    end = source.end - timedelta(days=2)
    good = train_models(library, config, source, symbols, train_end=end)
    names = [m.name for m in good]
    first = library.create_release(end.date(), production=names, created_by="tests")
    coin, day = symbols[0].split("/")[0], end.date()
    bad, _ = _broken_release(library, coin, day + timedelta(days=1), "checksum_mismatch", "b")
    settings = HamiltonSettings.from_config(
        config, symbols=symbols, metrics_port=None, health_port=None
    )
    metrics = HamiltonMetrics(venue=config.cost_model.venue)
    engine = HamiltonEngine(
        config, settings, symbols, sink=EventSink(None, tmp_path / "s.jsonl"), metrics=metrics
    )
    sensor = ReleaseSensor(library, engine)

    def refusals(reason: str) -> float:
        value: float = metrics.release_refused.labels(reason)._value.get()
        return value

    with structlog.testing.capture_logs() as logs:  # start: nothing served yet
        poll = sensor.poll()
    assert (poll.status, poll.release_id) == ("loaded", first.id)
    assert engine.release is not None and engine.release.id == first.id
    refused = [e for e in logs if e["event"] == "release_refused"]
    assert [(e["release_id"], e["reason"]) for e in refused] == [(bad, "checksum_mismatch")]
    assert refusals("checksum_mismatch") == 1
    with structlog.testing.capture_logs() as logs:  # the refused one is not tried again
        assert sensor.poll().status == "unchanged"
    assert not [e for e in logs if e["event"] == "release_refused"]
    assert refusals("checksum_mismatch") == 1
    missing, _ = _broken_release(library, coin, day + timedelta(days=2), "artifact_missing", "m")
    assert sensor.poll().status == "refused" and engine.release.id == first.id
    newer = library.create_release(day + timedelta(days=3), production=names, created_by="tests")
    assert sensor.poll().release_id == newer.id and engine.release.id == newer.id
    unreadable, _ = _broken_release(library, coin, day + timedelta(days=4), "unreadable", "u")
    poll = sensor.poll()  # never back to an older release because a newer one is broken
    assert (poll.status, engine.release.id) == ("refused", newer.id)
    assert sensor.refused == {
        bad: "checksum_mismatch",
        missing: "artifact_missing",
        unreadable: "unreadable_model",
    }
    assert refusals("artifact_missing") == refusals("unreadable_model") == 1
    library.close()


def test_service_starts_on_last_good_release_when_latest_is_corrupt(tmp_path: Path) -> None:
    config = hamilton_config(tmp_path)
    source, symbols, good = _world(config)
    library = BrainLibrary.from_config(config)
    coin = symbols[0].split("/")[0]
    bad, _ = _broken_release(library, coin, date(2030, 1, 2), "checksum_mismatch", "start")
    settings = _replay(config, source, symbols, max_bars=3)
    service = build_service(config, settings, library=library, source=source).service
    assert service.engine.release is not None and service.engine.release.id == good.id
    summary = asyncio.run(service.run())
    assert summary.ticks == 3 and service.engine.release.id == good.id
    stored = library.query_decision_events()
    assert len(stored) == 3 * len(symbols) and {e["release_id"] for e in stored} == {good.id}
    assert bad not in {e["release_id"] for e in stored}
    library.close()
