"""Concurrent writers (threads and separate processes) on SQLite and PostgreSQL: the unique
version numbers, the one-production-per-key rule and idempotency hold under races."""

import multiprocessing as mp
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from tests.integration.brain_fixtures import (
    BTC_TREND_1H,
    T0,
    brain,
    brain_dsn,
    day_of_events,
    pg_schema_dsn,
    register,
    sqlite_template,
)
from trading_core.brain import BrainLibrary
from trading_core.events import DecisionEvent
from trading_core.types import Stage

# Fixtures are found as attributes of the test module: importing them registers them.
FIXTURES = (brain, brain_dsn, pg_schema_dsn, sqlite_template)

WRITERS = 8
T = TypeVar("T")


def _race(work: Callable[[int], T], n: int = WRITERS) -> list[T]:
    """Run ``work(i)`` on n threads released at the same instant."""
    barrier = threading.Barrier(n)

    def run(i: int) -> T:
        barrier.wait(timeout=30)
        return work(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def test_threads_registering_distinct_models_get_distinct_versions(brain: BrainLibrary) -> None:
    versions = _race(lambda i: register(brain, tag=f"t{i}").version)
    assert sorted(versions) == list(range(1, WRITERS + 1))
    stored = brain.list_models()
    assert sorted(m.version for m in stored) == list(range(1, WRITERS + 1))
    assert len({m.name for m in stored}) == WRITERS


def test_threads_registering_same_model_get_one_version(brain: BrainLibrary) -> None:
    names = _race(lambda _: register(brain, tag="same").name)
    assert len(set(names)) == 1
    assert len(brain.list_models()) == 1


def test_threads_promoting_leave_exactly_one_production(brain: BrainLibrary) -> None:
    models = [register(brain, tag=f"p{i}") for i in range(WRITERS)]
    _race(lambda i: brain.promote(models[i].name, actor=f"w{i}", reason="race"))
    stages = [m.stage for m in brain.list_models()]
    assert stages.count(Stage.PRODUCTION) == 1
    assert stages.count(Stage.ARCHIVED) == WRITERS - 1
    history = brain.stage_history(BTC_TREND_1H)
    assert sum(h.to_stage is Stage.PRODUCTION for h in history) == WRITERS


def test_threads_creating_same_release_write_one(brain: BrainLibrary) -> None:
    model = register(brain)
    ids = _race(
        lambda _: (
            brain.create_release(date(2025, 1, 15), production=[model.name], created_by="d").id
        )
    )
    assert len(set(ids)) == 1
    assert len(brain.list_releases()) == 1


def test_threads_flushing_overlapping_events_store_each_once(brain: BrainLibrary) -> None:
    events: list[DecisionEvent] = day_of_events()
    # Writer i flushes events[i : i + 12]: together they cover events[0:19], mostly twice or more.
    inserted = _race(lambda i: brain.append_decision_events(events[i : i + 12], release_id=None))
    assert sum(inserted) == len(brain.query_decision_events()) == WRITERS + 11


def _register_in_process(dsn: str, root: str, tag: str, barrier: Any, results: Any) -> None:
    library = BrainLibrary(dsn, Path(root))
    try:
        barrier.wait(timeout=60)
        results.put(("ok", register(library, tag=tag).version))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the test
        results.put(("error", repr(exc)))
    finally:
        library.close()


def test_processes_registering_distinct_models_get_distinct_versions(
    brain: BrainLibrary, brain_dsn: str, tmp_path: Path
) -> None:
    brain.close()  # no pooled connection may be shared with forked children
    context = mp.get_context("fork")
    barrier, results = context.Barrier(WRITERS), context.Queue()
    root = str(tmp_path / "artifacts")
    workers = [
        context.Process(
            target=_register_in_process, args=(brain_dsn, root, f"p{i}", barrier, results)
        )
        for i in range(WRITERS)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert [o for o in outcomes if o[0] != "ok"] == []
    assert sorted(o[1] for o in outcomes) == list(range(1, WRITERS + 1))
    assert sorted(m.version for m in brain.list_models()) == list(range(1, WRITERS + 1))
    assert brain.verify_artifacts() == []
    assert all(m.created_at == T0 for m in brain.list_models())


def test_concurrent_migrations_of_a_fresh_database_all_succeed(
    brain_dsn: str, tmp_path: Path
) -> None:
    libraries = [BrainLibrary(brain_dsn, tmp_path / "a") for _ in range(4)]
    try:
        revisions = _race(lambda i: libraries[i].migrate(), n=len(libraries))
        assert len(set(revisions)) == 1
        assert all(lib.schema_is_current() for lib in libraries)
    finally:
        for lib in libraries:
            lib.close()
