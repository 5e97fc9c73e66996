"""A real PostgreSQL Brain Library goes down mid-run: events are spooled to the local JSON-lines
file and flushed when the server is back; none is lost, none duplicated.

The server is a private one (``initdb`` + ``pg_ctl`` in a temp dir on a free port), so the test
can stop and start it without touching the shared server.
"""

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from hamilton_exec.runtime.wiring import build_service
from hamilton_exec.settings import HamiltonSettings, ReplayWindow
from hamilton_exec.tick.hamilton_engine import TickReport
from tests.integration.hamilton_fixtures import (
    full_history_symbols,
    hamilton_config,
    make_release,
    market,
)
from trading_core.brain import BrainLibrary

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


@dataclass
class PrivatePostgres:
    data_dir: Path
    port: int
    user: str | None  # run the server as this OS user (initdb refuses root)

    @property
    def dsn(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if self.user is not None:
            command = ["su", self.user, "-s", "/bin/sh", "-c", " ".join(command)]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"'-p {self.port} -h 127.0.0.1 -k {self.data_dir}'"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir / "data"),
            "-o",
            options,
            "-w",
            "-l",
            str(self.data_dir / "pg.log"),
            "start",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir / "data"), "-m", "fast", "-w", "stop")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[PrivatePostgres]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL server binaries not found in {PG_BIN} (set PG_BIN)")
    user = "postgres" if os.geteuid() == 0 else None
    if user is not None and shutil.which("su") is None:
        pytest.skip("running as root without su: initdb cannot run")
    # outside pytest's tmp tree: that one is private to root, the server's user must enter it
    base = Path(tempfile.mkdtemp(prefix="hamilton-pg-"))
    if user is not None:
        shutil.chown(base, user)
    server = PrivatePostgres(base, _free_port(), user)
    server._run("initdb", "-D", str(base / "data"), "-U", "postgres", "--auth=trust")
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped by the test
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.postgres
def test_events_survive_a_database_outage(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    config = hamilton_config(tmp_path / "run")
    config = config.model_copy(
        update={
            "training": config.training.model_copy(
                update={
                    "model_versioning": config.training.model_versioning.model_copy(
                        update={
                            "brain_library_dsn": __import__("pydantic").SecretStr(
                                private_postgres.dsn
                            )
                        }
                    )
                }
            )
        }
    )
    source = market(config)
    symbols = tuple(full_history_symbols(source)[:2])
    library = BrainLibrary.from_config(config)
    library.migrate()
    release = make_release(
        library, config, source, symbols, train_end=source.end - timedelta(days=2)
    )
    window = ReplayWindow(source.end - timedelta(days=1), source.end)
    settings = HamiltonSettings.from_config(
        config, symbols=symbols, replay=window, metrics_port=None, health_port=None
    )
    prepared = build_service(config, settings, library=library, source=source)
    spool_sizes: list[int] = []

    def on_tick(report: TickReport) -> None:
        ticks = prepared.service.summary.ticks
        if ticks == 5:
            private_postgres.stop()
        elif ticks == 15:
            sink = prepared.service.engine.sink
            assert sink.wait_idle(30.0)  # flushes run in the background: let them finish
            spool_sizes.append(sink.spooled())
            private_postgres.start()

    prepared.service.on_tick = on_tick
    summary = asyncio.run(prepared.service.run())
    assert summary.ticks == 24
    assert spool_sizes and spool_sizes[0] >= 2 * 9  # the outage's events waited in the spool
    assert not settings.events_spool.exists()
    stored = library.query_decision_events()
    assert len(stored) == 24 * len(symbols)
    assert len({e["event_id"] for e in stored}) == len(stored)
    assert {e["release_id"] for e in stored} == {release.id}
    library.close()
