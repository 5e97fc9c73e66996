"""The long-lived Hamilton service: asyncio, sensors, health endpoints, graceful stop.

``run_service`` wires everything and runs until the feed ends (a replay), ``max_bars`` ticks
were decided, or SIGTERM/SIGINT arrives. A stop never interrupts a tick: the tick in flight
finishes, then events are flushed and the state is saved. Tick work (CPU) and Brain Library
calls (blocking I/O) run in worker threads so ``/healthz`` and ``/readyz`` stay responsive;
ticks themselves are strictly sequential.

``/healthz``: 200 while the process runs its loop. ``/readyz``: 200 once the windows are warm
and the first tick was decided within three bars, else 503 with the reason (JSON).
"""

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import start_http_server

from hamilton_exec.engine import HamiltonEngine, TickReport
from hamilton_exec.sensors import ReleaseSensor
from trading_core.brain import BrainLibrary
from trading_core.observability.logging import bind_context, get_logger


def _log() -> Any:
    return get_logger(__name__)


STATE_FILE = "hamilton_state.json"


def save_state(engine: HamiltonEngine, state_dir: Path) -> Path:
    """Write the engine's snapshot atomically (temp file, fsync, rename)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / STATE_FILE
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(engine.snapshot(), handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def load_state(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / STATE_FILE
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@dataclass
class RunSummary:
    """What a run did (printed by the CLI, asserted by tests)."""

    ticks: int = 0
    events: int = 0
    shadow_events: int = 0
    actions: dict[str, int] = field(default_factory=dict)
    orders: int = 0
    stopped_by: str = "feed_end"
    releases: list[int] = field(default_factory=list)

    def add(self, report: TickReport) -> None:
        self.ticks += 1
        self.events += len(report.events)
        self.shadow_events += len(report.shadow_events)
        self.orders += len(report.orders)
        for event in report.events:
            self.actions[event.action] = self.actions.get(event.action, 0) + 1


class HamiltonService:
    """Runs an engine over a feed with the release sensor, servers and signal handling."""

    def __init__(
        self,
        engine: HamiltonEngine,
        feed: Any,
        *,
        library: BrainLibrary | None,
        on_tick: Callable[[TickReport], None] | None = None,
    ) -> None:
        self.engine, self.feed, self.library = engine, feed, library
        self.settings = engine.settings
        self.sensor = ReleaseSensor(library, engine) if library is not None else None
        self.stop_event = asyncio.Event()
        self.summary = RunSummary()
        self.on_tick = on_tick
        self.ready_reason = "warming up"
        self.health_port: int | None = None
        self.metrics_port: int | None = None
        self._stopped_by = "feed_end"
        self._last_tick_at: datetime | None = None

    def request_stop(self, reason: str) -> None:
        if not self.stop_event.is_set():
            _log().info("hamilton_stopping", reason=reason)
            self._stopped_by = reason
            self.stop_event.set()

    async def run(self, *, after_ms: int | None = None) -> RunSummary:
        # the release loaded before the run (build_service) is bound too, not only later ones
        release = self.engine.release
        bind_context(
            service="hamilton",
            mode=self.settings.mode,
            release_id=release.id if release is not None else None,
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop, sig.name)
        metrics_server = self._start_metrics()
        health = await self._start_health()
        sensor_task = asyncio.create_task(self._poll_releases())
        try:
            await self._run_ticks(after_ms)
        finally:
            sensor_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sensor_task
            await asyncio.to_thread(self._finish)
            if health is not None:
                await health.cleanup()
            if metrics_server is not None:
                metrics_server[0].shutdown()
                metrics_server[0].server_close()
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        self.summary.stopped_by = self._stopped_by
        return self.summary

    async def _run_ticks(self, after_ms: int | None) -> None:
        ticks = self.feed.ticks(after_ms=after_ms)
        stop = asyncio.create_task(self.stop_event.wait())
        try:
            while not self.stop_event.is_set():
                step = asyncio.ensure_future(anext(ticks))
                done, _ = await asyncio.wait({step, stop}, return_when=asyncio.FIRST_COMPLETED)
                if step not in done:
                    step.cancel()
                    break
                try:
                    tick = step.result()
                except StopAsyncIteration:
                    break
                # the tick runs to its end even if a stop arrives meanwhile
                report = await asyncio.to_thread(self._tick, tick)
                self.summary.add(report)
                if self.on_tick is not None:
                    self.on_tick(report)
                if self.settings.max_bars and self.summary.ticks >= self.settings.max_bars:
                    self.request_stop("max_bars")
        finally:
            stop.cancel()
            with contextlib.suppress(StopAsyncIteration, RuntimeError):
                await ticks.aclose()

    def _tick(self, tick: Any) -> TickReport:
        report = self.engine.on_tick(tick)
        self._last_tick_at = datetime.now(UTC)
        self.ready_reason = ""
        if self.engine.ticks % self.settings.flush_every_bars == 0:
            self.engine.sink.flush()
        save_state(self.engine, self.settings.state_dir)
        return report

    def _finish(self) -> None:
        self.engine.shadow.checkpoint()
        result = self.engine.sink.flush()
        path = save_state(self.engine, self.settings.state_dir)
        _log().info(
            "hamilton_stopped",
            reason=self._stopped_by,
            ticks=self.summary.ticks,
            events=self.summary.events,
            spooled=result.spooled,
            state=str(path),
        )

    async def _poll_releases(self) -> None:
        if self.sensor is None:
            return
        while True:
            await asyncio.sleep(self.settings.release_poll_interval_s)
            result = await asyncio.to_thread(self.sensor.poll)
            if result.status == "loaded" and result.release_id is not None:
                self.summary.releases.append(result.release_id)
                bind_context(release_id=result.release_id)

    def _start_metrics(self) -> Any:
        port = self.settings.metrics_port
        if port is None:
            return None
        server = start_http_server(
            port, addr=self.settings.metrics_host, registry=self.engine.metrics.registry
        )
        self.metrics_port = server[0].server_port
        _log().info("metrics_listening", host=self.settings.metrics_host, port=self.metrics_port)
        return server

    async def _start_health(self) -> web.AppRunner | None:
        if self.settings.health_port is None:
            return None
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.metrics_host, self.settings.health_port)
        await site.start()
        addresses = runner.addresses  # the bound (host, port): port 0 picks a free one
        self.health_port = int(addresses[0][1]) if addresses else self.settings.health_port
        return runner

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "ticks": self.summary.ticks})

    async def _readyz(self, _: web.Request) -> web.Response:
        reason = self.ready_reason
        if not reason and self._last_tick_at is not None and self.settings.replay is None:
            age_s = (datetime.now(UTC) - self._last_tick_at).total_seconds()
            if age_s > 3 * self.settings.bar_ms / 1000:
                reason = f"no tick for {age_s:.0f} s"
        release = self.engine.release
        body = {
            "ready": not reason,
            "reason": reason,
            "release_id": release.id if release else None,
        }
        return web.json_response(body, status=503 if reason else 200)
