"""DecisionEvents, trade outcomes, shadow periods and order executions on their way to the
Brain Library, never lost and never in the way of a tick.

Every event is logged at once (a structlog JSON line) and queued. A flush takes the spool file
(JSON lines kept while the database could not be written) and the queue, and writes them in
chunks from a writer thread; the flush waits at most ``flush_timeout_s`` for it. Whatever is not
confirmed written by then - the database hung, refused the write (read-only, permission, disk
full, unreachable: ANY failure) - goes to the spool (flushed and fsync'ed, replaced atomically)
and waits there for a later flush. A write still hanging keeps its thread; no second writer
starts until it ends, and what it may still write is in the spool too: writes are idempotent
(event ids derive from symbol, bar and model version; outcomes are keyed by event id; a shadow
period by challenger and period; an execution by client order id), so a record written twice is
stored once and a record whose write failed is in the spool. Only a record the library refuses
for what it holds (an outcome or execution whose event is not stored yet, an unknown
challenger, an invalid event) is kept in the spool as deferred without holding back the others
(:mod:`hamilton_exec.accounting.event_writes`).

The service asks for flushes with :meth:`EventSink.request_flush` (returns at once; a background
thread flushes) and ends with :meth:`EventSink.close` (a last flush, bounded by the timeout).
:meth:`EventSink.flush` is the same flush, run in the caller's thread.
"""

import contextvars
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol

from hamilton_exec.accounting.event_spool import SpoolFile
from hamilton_exec.accounting.event_writes import write_records
from trading_core.brain import BrainLibrary
from trading_core.events import DecisionEvent
from trading_core.observability.logging import get_logger
from trading_core.shadow.periods import ShadowPeriod

DEFAULT_FLUSH_TIMEOUT_S: Final = 5.0
CHUNK_RECORDS: Final = 500  # records per write transaction: a slow drain still makes progress


def _log() -> Any:
    return get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A closed trade linked to the decision that opened it."""

    event_id: str
    fill_price: float
    pnl_usd: float
    fees_usd: float
    closed_at: datetime
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "fill_price": self.fill_price,
            "pnl_usd": self.pnl_usd,
            "fees_usd": self.fees_usd,
            "closed_at": self.closed_at.isoformat(),
            "details": self.details,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Outcome":
        return cls(**{**data, "closed_at": datetime.fromisoformat(data["closed_at"])})


class _Serialisable(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class FlushResult:
    events_written: int
    outcomes_written: int
    spooled: int  # records left in the spool file after this flush


@dataclass
class _Attempt:
    """One flush's writes, in their own thread: how far they got and how they ended."""

    chunks: list[list[dict[str, Any]]]
    lock: threading.Lock = field(default_factory=threading.Lock)
    finished: threading.Event = field(default_factory=threading.Event)
    done: int = 0  # chunks confirmed written
    kept: list[dict[str, Any]] = field(default_factory=list)  # deferred records of those
    events: int = 0
    outcomes: int = 0
    error: BaseException | None = None
    cancelled: bool = False  # the flush gave up waiting: write no further chunk


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    event = record.get("event")
    return {**record, "event": event.to_dict()} if isinstance(event, DecisionEvent) else record


class EventSink:
    """Queue, spool and flush (see the module docstring). ``add_*``, :meth:`request_flush` and
    :meth:`close` may be called from any thread; one flush runs at a time."""

    def __init__(
        self,
        library: BrainLibrary | None,
        spool_path: Path,
        *,
        on_spool: Callable[[int], None] | None = None,
        on_depth: Callable[[int], None] | None = None,
        flush_timeout_s: float = DEFAULT_FLUSH_TIMEOUT_S,
    ) -> None:
        self.library = library
        self.spool_path = Path(spool_path)
        self.flush_timeout_s = flush_timeout_s
        self.last_result: FlushResult | None = None
        self._queue: list[dict[str, Any]] = []
        self._on_spool = on_spool  # spool depth, after a failed or timed-out write
        self._on_depth = on_depth  # spool depth, after every flush (a gauge)
        self._cond = threading.Condition()  # guards the queue and the request counters
        self._flush_lock = threading.Lock()  # one flush at a time
        self._requested = self._served = 0
        self._flusher: tuple[threading.Thread, threading.Event] | None = None
        self._context = contextvars.copy_context()
        self._attempt: _Attempt | None = None
        self._spool = SpoolFile(self.spool_path)

    # --- queueing (the tick's side: no I/O) ------------------------------------------------

    def add_event(self, event: DecisionEvent, *, release_id: int | None, shadow: bool) -> None:
        _log().info(
            "decision",
            symbol=event.symbol,
            bar=event.timestamp.isoformat(),
            action=event.action,
            regime=event.regime,
            net_edge_bps=round(event.net_edge_bps, 4),
            shadow=shadow,
            reasons=",".join(event.reasons),  # a string: the secret scrubber reads strings
            release_id=release_id,
        )
        # serialised at flush time (in the flusher): to_dict costs more than the decision
        self._append({"kind": "event", "release_id": release_id, "shadow": shadow, "event": event})

    def add_outcome(self, outcome: Outcome) -> None:
        self._append({"kind": "outcome", "outcome": outcome.to_dict()})

    def add_shadow_period(self, period: ShadowPeriod) -> None:
        """A shadow pair's period, for the Brain Library's shadow results (an upsert)."""
        _log().info(
            "shadow_period",
            challenger=period.challenger,
            champion=period.champion,
            start=period.period_start.isoformat(),
            bars=period.n_bars,
            trades_champion=len(period.champion_trades),
            trades_challenger=len(period.challenger_trades),
        )
        self._append({"kind": "shadow_period", "period": period.to_dict()})

    def add_execution(self, execution: "_Serialisable") -> None:
        """An order's final report (:class:`hamilton_exec.execution.orders_flow.Execution`), for the
        Brain Library's order executions (merged by client order id)."""
        self._append({"kind": "execution", "execution": execution.to_dict()})

    def _append(self, record: dict[str, Any]) -> None:
        with self._cond:
            self._queue.append(record)

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def spool_depth(self) -> int:
        """Records in the spool file after the last flush (no file read)."""
        return self._spool.depth

    def spooled(self) -> int:
        return len(self._spool.read())

    # --- the background flusher ------------------------------------------------------------

    def request_flush(self, timeout_s: float | None = None) -> None:
        """Have the background flusher flush soon; returns at once (never waits on I/O)."""
        with self._cond:
            if timeout_s is not None:
                self.flush_timeout_s = timeout_s
            # the flush logs (and the library's) carry the requester's bound context
            # (service, release_id): threads do not inherit contextvars
            self._context = contextvars.copy_context()
            if self._flusher is None or not self._flusher[0].is_alive():
                stop = threading.Event()
                thread = threading.Thread(
                    target=self._flush_loop, args=(stop,), name="event-sink-flusher", daemon=True
                )
                self._flusher = (thread, stop)
                thread.start()
            self._requested += 1
            self._cond.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until the flushes requested so far are done; False on timeout."""
        with self._cond:
            target = self._requested
            return self._cond.wait_for(lambda: self._served >= target, timeout_s)

    def close(self, timeout_s: float | None = None) -> FlushResult:
        """Stop the background flusher and flush a last time (the timeout bounds the wait on
        the database: what is not written by then is in the spool when this returns)."""
        timeout = self.flush_timeout_s if timeout_s is None else timeout_s
        with self._cond:
            flusher, self._flusher = self._flusher, None
            if flusher is not None:
                flusher[1].set()
                self._cond.notify_all()
        if flusher is not None:
            flusher[0].join(timeout + 5.0)  # a flush in progress ends within its timeout
        return self.flush(timeout)

    def _flush_loop(self, stop: threading.Event) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: stop.is_set() or self._requested > self._served)
                if stop.is_set():
                    return
                context = self._context.copy()
            try:
                context.run(self.flush)
            except Exception as exc:  # noqa: BLE001 - the flusher must outlive any one flush
                _log().error("event_flush_failed", error=repr(exc), exc_info=True)

    # --- one flush ---------------------------------------------------------------------------

    def flush(self, timeout_s: float | None = None) -> FlushResult:
        """Write spool then queue to the Brain Library, waiting at most ``timeout_s`` (default
        ``flush_timeout_s``); whatever is not written by then is spooled."""
        timeout = self.flush_timeout_s if timeout_s is None else timeout_s
        with self._flush_lock:
            with self._cond:
                target = self._requested
                queued, self._queue = self._queue, []
            try:
                result = self._flush(queued, timeout)
            except BaseException:
                with self._cond:  # nothing taken from the queue is lost
                    self._queue[:0] = queued
                raise
            finally:
                with self._cond:
                    self._served = max(self._served, target)
                    self._cond.notify_all()
        self.last_result = result
        if self._on_depth is not None:
            self._on_depth(result.spooled)
        return result

    def _flush(self, queued: list[dict[str, Any]], timeout: float) -> FlushResult:
        records = [*self._spool.read(), *(_plain(r) for r in queued)]
        if not records:
            self._spool.replace(records)
            return FlushResult(0, 0, 0)
        if self.library is None:
            self._spool.replace(records)
            return FlushResult(0, 0, len(records))
        if self._attempt is not None and not self._attempt.finished.is_set():
            result = FlushResult(0, 0, len(records))
            return self._failed(records, result, "write_in_flight", None, timeout)
        chunks = [records[i : i + CHUNK_RECORDS] for i in range(0, len(records), CHUNK_RECORDS)]
        attempt = self._attempt = _Attempt(chunks)
        threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._run_attempt, attempt),
            name="event-sink-writer",
            daemon=True,
        ).start()
        finished = attempt.finished.wait(timeout)
        with attempt.lock:
            attempt.cancelled = True
            done, error = attempt.done, attempt.error
            left = [*attempt.kept, *itertools.chain.from_iterable(chunks[done:])]
            result = FlushResult(attempt.events, attempt.outcomes, len(left))
        if finished and error is None:
            self._spool.replace(left)
            return result
        reason = "timeout" if not finished else "write_failed"
        return self._failed(left, result, reason, error, timeout)

    def _failed(
        self,
        left: list[dict[str, Any]],
        result: FlushResult,
        reason: str,
        error: BaseException | None,
        timeout: float,
    ) -> FlushResult:
        self._spool.replace(left)
        _log().warning(
            "events_spooled",
            count=len(left),
            reason=reason,
            timeout_s=timeout,
            path=str(self.spool_path),
            error=type(error).__name__ if error is not None else None,
            detail=str(error).splitlines()[0][:300] if error is not None and str(error) else None,
        )
        if self._on_spool is not None:
            self._on_spool(len(left))
        return result

    def _run_attempt(self, attempt: _Attempt) -> None:
        """The writer thread: chunk after chunk until done, failed or given up on."""
        try:
            for chunk in attempt.chunks:
                with attempt.lock:
                    if attempt.cancelled:
                        return
                assert self.library is not None  # noqa: S101 - checked by flush
                events, outcomes, kept = write_records(self.library, chunk)
                with attempt.lock:
                    attempt.done += 1
                    attempt.events += events
                    attempt.outcomes += outcomes
                    attempt.kept.extend(kept)
        except BaseException as exc:  # noqa: BLE001 - any failure: the flush spools the rest
            attempt.error = exc
        finally:
            attempt.finished.set()
