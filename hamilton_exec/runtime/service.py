"""The long-lived Hamilton service: asyncio, sensors, health endpoints, graceful stop.

:meth:`HamiltonService.run` (wired by :func:`hamilton_exec.runtime.wiring.build_service`) runs until
the feed ends (a replay), ``max_bars`` ticks were decided, or SIGTERM/SIGINT arrives. A stop never
interrupts a tick: the tick in flight finishes, then events are flushed and the state is saved.
Tick work (CPU) and Brain Library calls (blocking I/O) run in worker threads so ``/healthz`` and
``/readyz`` stay responsive; ticks themselves are strictly sequential.

``/healthz``: 200 while the process runs its loop. ``/readyz``: 200 once the windows are warm
and the first tick was decided within three bars, else 503 with the reason (JSON).
``GET /status``: positions, open orders, PnL, risk state (:mod:`hamilton_exec.runtime.status`).
``POST /control/kill`` and ``/control/resume`` (bearer token, :mod:`hamilton_exec.runtime.control`)
apply between ticks, as does a request left in ``<state_dir>/control.json`` (read at start
and every ``CONTROL_POLL_S``). The server binds ``hamilton.health_host`` (127.0.0.1).
"""

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import start_http_server

from hamilton_exec.market_data.feeds import Feed
from hamilton_exec.market_data.window import Tick
from hamilton_exec.runtime.control import (
    CONTROL_POLL_S,
    ControlAction,
    ControlDesk,
    ControlError,
    authorize,
    control_token,
    new_request,
    write_json_atomic,
)
from hamilton_exec.runtime.release_sensor import ReleaseSensor
from hamilton_exec.runtime.status import build_status
from hamilton_exec.tick.hamilton_engine import HamiltonEngine, TickReport
from trading_core.brain import BrainLibrary
from trading_core.errors import CoinEngineError
from trading_core.observability.logging import bind_context, get_logger


def _log() -> Any:
    return get_logger(__name__)


STATE_FILE = "hamilton_state.json"


def save_state(engine: HamiltonEngine, state_dir: Path) -> Path:
    """Write the engine's snapshot atomically (temp file, fsync, rename), under the engine's
    lock: a tick, a kill or a reconcile never changes it mid-snapshot, and two saves never
    interleave (an older snapshot cannot overwrite a newer one)."""
    with engine.lock:
        return write_json_atomic(state_dir / STATE_FILE, engine.snapshot())


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
        feed: Feed,
        *,
        library: BrainLibrary | None,
        on_tick: Callable[[TickReport], None] | None = None,
        refused: dict[int, str] | None = None,
    ) -> None:
        self.engine, self.feed, self.library = engine, feed, library
        self.settings = engine.settings
        self.sensor = (
            ReleaseSensor(library, engine, refused=refused) if library is not None else None
        )
        self.stop_event = asyncio.Event()
        self.summary = RunSummary()
        self.on_tick = on_tick
        self.ready_reason = "warming up"
        self.health_port: int | None = None
        self.metrics_port: int | None = None
        self._stopped_by = "feed_end"
        self._last_tick_at: datetime | None = None
        self._control_token: str | None = None  # from hamilton.control_token_env, at start
        self.control = ControlDesk(
            engine, self.settings.state_dir, lambda: save_state(engine, self.settings.state_dir)
        )

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
        await asyncio.to_thread(self.control.apply_file)  # a request left while stopped
        sensor_task = asyncio.create_task(self._poll_releases())
        control_task = asyncio.create_task(self._watch_control())
        reconcile_task = asyncio.create_task(self._reconcile_periodically())
        try:
            await self._run_ticks(after_ms)
        finally:
            sensor_task.cancel()
            control_task.cancel()
            reconcile_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reconcile_task
            with contextlib.suppress(asyncio.CancelledError):
                await sensor_task
            with contextlib.suppress(asyncio.CancelledError):
                await control_task
            await asyncio.to_thread(self.control.close)  # no kill/resume from here on
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

    async def _reconcile_periodically(self) -> None:
        """Every ``hamilton.reconcile_interval_s``: the exchange's balances, positions and open
        orders, read off the tick and applied at the next tick's start (live brokers only: a
        paper broker's books are the truth). A failed read is logged and counted; the next
        interval tries again."""
        interval_s = self.engine.config.hamilton.reconcile_interval_s
        engine = self.engine
        while True:
            await asyncio.sleep(interval_s)
            seq = await asyncio.to_thread(engine.quiet_order_seq)
            if seq is None:  # orders in flight: their fills would race the read
                engine.metrics.reconciles.labels("deferred").inc()
                continue
            started = time.perf_counter()
            try:
                snapshot = await asyncio.to_thread(engine.broker.snapshot, engine.symbols)
            except CoinEngineError as exc:
                engine.metrics.count_error("reconcile", exc)
                engine.metrics.reconciles.labels("failed").inc()
                _log().warning("reconcile_failed", error=type(exc).__name__, detail=str(exc))
                continue
            engine.metrics.latency.labels("reconcile", "snapshot").observe(
                (time.perf_counter() - started) * 1e3
            )
            if snapshot is not None:
                engine.offer_snapshot(snapshot, seq)

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

    def _tick(self, tick: Tick) -> TickReport:
        report = self.engine.on_tick(tick)
        self._last_tick_at = datetime.now(UTC)
        self.ready_reason = ""
        if self.engine.ticks % self.settings.flush_every_bars == 0:
            # the background flusher writes (bounded by flush_timeout_s, else it spools): a
            # hung database never holds up a tick
            self.engine.sink.request_flush(timeout_s=self.settings.flush_timeout_s)
        save_state(self.engine, self.settings.state_dir)
        return report

    def _finish(self) -> None:
        self.engine.shadow.checkpoint()
        spooled = self._final_flush()
        path = save_state(self.engine, self.settings.state_dir)
        _log().info(
            "hamilton_stopped",
            reason=self._stopped_by,
            ticks=self.summary.ticks,
            events=self.summary.events,
            spooled=spooled,
            state=str(path),
        )

    def _final_flush(self) -> int | None:
        """Stop the flusher and flush once more, waiting at most ``flush_timeout_s`` on the
        database: what is not written by then is in the spool (the next start drains it).
        Returns the spool's depth; None when even the spool could not be written."""
        sink = self.engine.sink
        try:
            return sink.close(timeout_s=self.settings.flush_timeout_s).spooled
        except Exception as exc:  # noqa: BLE001 - the state is saved and the stop logged anyway
            _log().error(
                "events_not_saved",
                queued=sink.queued,
                spool=str(sink.spool_path),
                error=repr(exc),
            )
            return None

    async def _poll_releases(self) -> None:
        self._drain_earlier_spool()
        if self.sensor is None:
            return
        while True:
            await asyncio.sleep(self.settings.release_poll_interval_s)
            try:
                result = await asyncio.to_thread(self.sensor.poll)
            except Exception as exc:  # noqa: BLE001 - a failed poll must not end the polling
                _log().error("release_poll_failed", error=repr(exc), exc_info=True)
                continue
            if result.status == "loaded" and result.release_id is not None:
                self.summary.releases.append(result.release_id)
                bind_context(release_id=result.release_id)

    def _drain_earlier_spool(self) -> None:
        """Records an earlier run left in the spool go to the database now (in the
        background), not only after the first tick."""
        sink = self.engine.sink
        if sink.library is not None and sink.spool_depth:
            sink.request_flush(timeout_s=self.settings.flush_timeout_s)

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
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/status", self._status)
        app.router.add_post("/control/kill", self._control_kill)
        app.router.add_post("/control/resume", self._control_resume)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        host = self.engine.config.hamilton.health_host
        self._control_token = control_token(self.engine.config)  # read once: never logged
        site = web.TCPSite(runner, host, self.settings.health_port)
        await site.start()
        addresses = runner.addresses  # the bound (host, port): port 0 picks a free one
        self.health_port = int(addresses[0][1]) if addresses else self.settings.health_port
        _log().info(
            "health_listening",
            host=host,
            port=self.health_port,
            control="enabled" if self._control_token else "disabled",
        )
        return runner

    async def _watch_control(self) -> None:
        """Apply a request the CLI leaves in the control file while the service runs."""
        while True:
            await asyncio.sleep(CONTROL_POLL_S)
            await asyncio.to_thread(self.control.apply_file)

    def status_view(self) -> dict[str, Any]:
        """The status (:func:`build_status`) of the running engine, taken between ticks."""
        with self.engine.lock:
            snapshot = self.engine.snapshot()
        last = self._last_tick_at
        return build_status(
            snapshot,
            initial_capital_usd=self.engine.config.risk.initial_capital_usd,
            source="service",
            service={
                "mode": self.settings.mode,
                "ticks": self.summary.ticks,
                "ready": not self.ready_reason,
                "last_tick_at": last.isoformat() if last is not None else None,
                "state_dir": str(self.settings.state_dir.resolve()),
            },
        )

    async def _status(self, _: web.Request) -> web.Response:
        return web.json_response(await asyncio.to_thread(self.status_view))

    async def _control_kill(self, request: web.Request) -> web.Response:
        return await self._control(request, "kill")

    async def _control_resume(self, request: web.Request) -> web.Response:
        return await self._control(request, "resume")

    async def _control(self, request: web.Request, action: ControlAction) -> web.Response:
        """Authenticate, read ``{"reason": ...}``, apply between ticks (a worker thread waits
        for the engine's tick lock; the event loop never does)."""
        token_env = self.engine.config.hamilton.control_token_env
        verdict = authorize(
            request.headers.get("Authorization"), self._control_token, token_env=token_env
        )
        if not verdict.allowed:
            _log().warning("control_refused", action=action, status=verdict.status)
            return web.json_response({"error": verdict.message}, status=verdict.status)
        try:
            body = await request.json()
        except ValueError:
            message = 'the body must be JSON like {"reason": "..."}'
            return web.json_response({"error": message}, status=400)
        try:
            reason = body.get("reason") if isinstance(body, dict) else None
            control = new_request(action, reason, origin="http")
        except ControlError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        try:
            applied = await asyncio.to_thread(self.control.apply, control)
        except Exception as exc:  # noqa: BLE001 - answered (500) and logged, the service goes on
            _log().error("control_failed", action=action, error=repr(exc), exc_info=True)
            return web.json_response({"error": f"{action} failed: {exc!r}"}, status=500)
        if applied is None:
            message = "the service is stopping: leave the request in the control file"
            return web.json_response({"error": message}, status=503)
        return web.json_response(applied)

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
