"""DecisionEvents, trade outcomes and shadow periods on their way to the Brain Library, never
lost.

Every event is logged at once (a structlog JSON line) and queued. :meth:`EventSink.flush` first
drains the local spool file (JSON lines written while the database was unreachable), then the
queue. If the Brain Library is unreachable (:class:`BrainUnavailableError`), the queue is
appended to the spool (flushed and fsync'ed) and kept there until a later flush succeeds. Writes
are idempotent (event ids derive from symbol, bar and model version; outcomes are keyed by
event id; a shadow period by challenger and period), so a flush repeated after a crash between
"written to the database" and "spool truncated" duplicates nothing.
"""

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from trading_core.brain import BrainLibrary
from trading_core.errors import BrainLibraryError, BrainUnavailableError
from trading_core.events import DecisionEvent
from trading_core.observability.logging import get_logger
from trading_core.shadow.periods import ShadowPeriod


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


@dataclass(frozen=True)
class FlushResult:
    events_written: int
    outcomes_written: int
    spooled: int  # records left in the spool file after this flush


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    event = record.get("event")
    return {**record, "event": event.to_dict()} if isinstance(event, DecisionEvent) else record


class EventSink:
    """Queue, spool and flush (see the module docstring). Not thread-safe: one owner."""

    def __init__(
        self,
        library: BrainLibrary | None,
        spool_path: Path,
        *,
        on_spool: Callable[[int], None] | None = None,
    ) -> None:
        self.library = library
        self.spool_path = Path(spool_path)
        self._queue: list[dict[str, Any]] = []
        self._on_spool = on_spool

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
        # serialised at flush time: to_dict costs more than the decision itself
        self._queue.append(
            {"kind": "event", "release_id": release_id, "shadow": shadow, "event": event}
        )

    def add_outcome(self, outcome: Outcome) -> None:
        self._queue.append({"kind": "outcome", "outcome": outcome.to_dict()})

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
        self._queue.append({"kind": "shadow_period", "period": period.to_dict()})

    @property
    def queued(self) -> int:
        return len(self._queue)

    def spooled(self) -> int:
        return len(self._read_spool())

    def flush(self) -> FlushResult:
        """Write spool then queue to the Brain Library; on an outage, spool the queue."""
        records = [*self._read_spool(), *(_plain(r) for r in self._queue)]
        if not records:
            return FlushResult(0, 0, 0)
        if self.library is None:
            self._spool(records)
            return FlushResult(0, 0, len(records))
        try:
            events, outcomes, kept = self._write(records)
        except BrainUnavailableError as exc:
            self._spool(records)
            _log().warning(
                "events_spooled",
                count=len(records),
                path=str(self.spool_path),
                error=type(exc).__name__,
            )
            if self._on_spool is not None:
                self._on_spool(len(records))
            return FlushResult(0, 0, len(records))
        self._spool(kept)
        return FlushResult(events, outcomes, len(kept))

    def _write(self, records: list[dict[str, Any]]) -> tuple[int, int, list[dict[str, Any]]]:
        assert self.library is not None  # noqa: S101 - checked by flush
        groups: dict[tuple[int | None, bool], list[dict[str, Any]]] = {}
        for record in records:
            if record["kind"] == "event":
                key = (record["release_id"], bool(record["shadow"]))
                groups.setdefault(key, []).append(record["event"])
        written = 0
        for (release_id, shadow), events in groups.items():
            written += self.library.append_decision_events(
                events, release_id=release_id, shadow=shadow
            )
        outcomes, kept = 0, []
        for record in records:
            if record["kind"] == "shadow_period":
                kept.extend(self._write_period(record))
                continue
            if record["kind"] != "outcome":
                continue
            outcome = Outcome.from_dict(record["outcome"])
            try:
                outcomes += int(
                    self.library.record_trade_outcome(
                        outcome.event_id,
                        fill_price=outcome.fill_price,
                        pnl_usd=outcome.pnl_usd,
                        closed_at=outcome.closed_at,
                        fees_usd=outcome.fees_usd,
                        details=outcome.details,
                    )
                )
            except BrainUnavailableError:
                raise
            except BrainLibraryError as exc:
                # the opening event is not stored (yet): keep the outcome for a later flush
                _log().warning("outcome_deferred", event_id=outcome.event_id, error=str(exc))
                kept.append(record)
        self._queue = []
        return written, outcomes, kept

    def _write_period(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        """Write one shadow period; a period the library refuses (e.g. its challenger is
        unknown there) is kept in the spool with a warning, like a deferred outcome."""
        assert self.library is not None  # noqa: S101 - checked by flush
        period = ShadowPeriod.from_dict(record["period"])
        try:
            self.library.record_shadow_result(**period.record_arguments())
        except BrainUnavailableError:
            raise
        except BrainLibraryError as exc:
            _log().warning("shadow_period_deferred", challenger=period.challenger, error=str(exc))
            return [record]
        return []

    def _read_spool(self) -> list[dict[str, Any]]:
        if not self.spool_path.exists():
            return []
        lines = self.spool_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def _spool(self, records: list[dict[str, Any]]) -> None:
        """Replace the spool with ``records`` atomically (temp file, fsync, rename)."""
        self._queue = []
        if not records:
            self.spool_path.unlink(missing_ok=True)
            return
        self.spool_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.spool_path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, sort_keys=True, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.spool_path)
