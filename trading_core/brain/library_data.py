"""BrainLibrary methods for releases, rankings, reliability, events, shadow results, gates.

A mixin so that :mod:`trading_core.brain.library` stays small; it uses the library's
``_db`` (transactions) and ``_clock`` (UTC now).
"""

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from trading_core.brain import events_store, executions_store, releases
from trading_core.brain.db import Database
from trading_core.brain.records import (
    EngineReliability,
    ModelKey,
    ModelVersion,
    RegimeGateOverride,
    Release,
    ShadowResult,
    canonical_json,
)
from trading_core.errors import DataValidationError
from trading_core.events import DecisionEvent
from trading_core.observability.logging import get_logger

if TYPE_CHECKING:
    import polars as pl


def _log() -> Any:
    # Looked up per call: a logger bound at import would miss a later configure_logging().
    return get_logger(__name__)


def _check_release_input(
    production: Sequence[str],
    shadow: Sequence[str],
    gates: Mapping[str, Any] | None,
    created_by: str,
) -> None:
    """What every written release must satisfy (a rollback, a daily push, a hand-made one)."""
    releases.validate_release_lists(production, shadow)
    if gates is not None:
        canonical_json(dict(gates), "gates")
    if not created_by.strip():
        raise DataValidationError(f"created_by {created_by!r} must name who releases")


class BrainDataMixin:
    _db: Database
    _clock: Callable[[], datetime]

    # --- releases ------------------------------------------------------------------------

    def create_release(
        self,
        release_date: date,
        *,
        production: Sequence[str],
        shadow: Sequence[str] = (),
        gates: Mapping[str, Any] | None = None,
        created_by: str,
        note: str = "",
    ) -> Release:
        """Write a release and apply its stages atomically (all rows or none). The same
        content on the same date returns the existing release."""
        _check_release_input(production, shadow, gates, created_by)

        def work(session: Session) -> Release:
            row = releases.insert_release(
                session, release_date=release_date, production=production, shadow=shadow,
                gates=gates, created_by=created_by, note=note, at=self._clock(),
            )  # fmt: skip
            return releases.to_release(session, row)

        release = self._db.write(work)
        _log().info("release_created", release_id=release.id, release_date=str(release_date),
                 production=len(release.production), shadow=len(release.shadow))  # fmt: skip
        return release

    def push_daily_release(
        self,
        release_date: date,
        *,
        production: Sequence[str],
        shadow: Sequence[str] = (),
        gates: Mapping[str, Any] | None = None,
        created_by: str,
        note: str = "",
    ) -> releases.PushOutcome:
        """The daily push (:func:`trading_core.brain.releases.push_daily`): a new release only
        when the content changed and the day is not older than the latest release's."""
        _check_release_input(production, shadow, gates, created_by)

        def work(session: Session) -> tuple[releases.PushStatus, Release | None]:
            status, row = releases.push_daily(
                session, release_date=release_date, production=production, shadow=shadow,
                gates=gates, created_by=created_by, note=note, at=self._clock(),
            )  # fmt: skip
            return status, None if row is None else releases.to_release(session, row)

        status, release = self._db.write(work)
        return releases.PushOutcome(status, release_date, release)

    def latest_release(self) -> Release | None:
        with self._db.read() as session:
            row = releases.latest_row(session)
            return None if row is None else releases.to_release(session, row)

    def get_release(self, release_id: int) -> Release:
        with self._db.read() as session:
            return releases.to_release(session, releases.get_release_row(session, release_id))

    def list_releases(self, limit: int | None = None) -> list[Release]:
        """Newest first."""
        with self._db.read() as session:
            return [releases.to_release(session, r) for r in releases.list_rows(session, limit)]

    def release_models(self, release_id: int) -> list[ModelVersion]:
        """The release's model versions, each with its ``role`` (production or shadow)."""
        with self._db.read() as session:
            return releases.models_of(session, release_id)

    def rollback_release(self, release_id: int, *, actor: str, reason: str) -> Release:
        """A new release equal to release ``release_id``; its models serve again."""
        if not actor.strip() or not reason.strip():
            raise DataValidationError(
                f"actor {actor!r} and reason {reason!r} must both be given (audit)"
            )

        def work(session: Session) -> Release:
            earlier = releases.get_release_row(session, release_id)
            production, shadow = releases.rollback_lists(session, release_id)
            now = self._clock()
            row = releases.insert_release(
                session, release_date=now.date(), production=production, shadow=shadow,
                gates=earlier.gates, created_by=actor,
                note=f"rollback to release {release_id}: {reason}", at=now,
                rollback_of_id=release_id,
            )  # fmt: skip
            return releases.to_release(session, row)

        release = self._db.write(work)
        _log().warning("release_rolled_back", release_id=release.id, rollback_of=release_id,
                    actor=actor, reason=reason)  # fmt: skip
        return release

    # --- liquidity rankings and engine reliability ---------------------------------------

    def save_ranking(
        self, as_of: date, frame: "pl.DataFrame", *, selected_top: int | None = None
    ) -> int:
        """Replace the ranking of ``as_of`` (``liquidity_ranking(...).ranked``; columns:
        ``data_store.RANKING_SCHEMA``; without ``selected``, the top ``selected_top`` ranks)."""
        from trading_core.brain import data_store  # here: it loads polars

        checked = data_store.validated_ranking(frame, selected_top)
        count = self._db.write(lambda s: data_store.replace_ranking(s, as_of, checked))
        _log().info("ranking_saved", as_of=str(as_of), coins=count)
        return count

    def load_ranking(self, as_of: date) -> "pl.DataFrame":
        """The ranking of ``as_of`` sorted by rank (empty, with the schema, if none)."""
        from trading_core.brain import data_store  # here: it loads polars

        with self._db.read() as session:
            return data_store.load_ranking(session, as_of)

    def save_engine_reliability(
        self,
        key: ModelKey,
        records: Sequence[EngineReliability],
        *,
        updated_at: datetime | None = None,
    ) -> None:
        """Replace the key's per-engine reliability (measured out of sample)."""
        from trading_core.brain import data_store  # here: it loads polars

        stamp = updated_at or self._clock()
        self._db.write(lambda s: data_store.replace_reliability(s, key, records, stamp))

    def load_engine_reliability(self, key: ModelKey) -> dict[str, EngineReliability]:
        from trading_core.brain import data_store  # here: it loads polars

        with self._db.read() as session:
            return data_store.load_reliability(session, key)

    # --- decision events and outcomes ----------------------------------------------------

    def append_decision_events(
        self,
        events: Sequence[DecisionEvent | Mapping[str, Any]],
        *,
        release_id: int | None,
        shadow: bool = False,
    ) -> int:
        """Store events; ones already stored (same event id) are skipped. Returns new rows."""
        rows = events_store.event_rows(
            events, release_id=release_id, shadow=shadow, recorded_at=self._clock()
        )
        return self._db.write(lambda s: events_store.insert_events(s, rows))

    def query_decision_events(
        self,
        symbol: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        action: str | None = None,
        shadow: bool | None = None,
        limit: int | None = None,
        release_id: int | None = None,
        model_version: str | None = None,
    ) -> list[dict[str, Any]]:
        """Events as ``DecisionEvent.to_dict()`` plus event_id, release_id, shadow."""
        with self._db.read() as session:
            return events_store.query_events(
                session, symbol=symbol, since=since, until=until, action=action,
                shadow=shadow, release_id=release_id, limit=limit, model_version=model_version,
            )  # fmt: skip

    def record_trade_outcome(
        self,
        event_id: str,
        *,
        fill_price: float,
        pnl_usd: float,
        closed_at: datetime,
        fees_usd: float = 0.0,
        details: Mapping[str, Any] | None = None,
    ) -> bool:
        """Link a closed trade to its decision; False if it was recorded before."""
        return self._db.write(
            lambda s: events_store.insert_trade_outcome(
                s, event_id, fill_price=fill_price, pnl_usd=pnl_usd, fees_usd=fees_usd,
                closed_at=closed_at, details=details,
            )
        )  # fmt: skip

    def trade_outcomes(
        self,
        symbol: str | None = None,
        since: datetime | None = None,
        *,
        until: datetime | None = None,
        model_version: str | None = None,
    ) -> list[dict[str, Any]]:
        """Closed trades with their decision's symbol, bar, regime, model version and shadow
        flag; ``since``/``until`` bound the close time (inclusive/exclusive)."""
        with self._db.read() as session:
            return events_store.query_outcomes(
                session, symbol=symbol, since=since, until=until, model_version=model_version
            )

    # --- order executions ----------------------------------------------------------------

    def record_order_execution(
        self,
        client_order_id: str,
        *,
        symbol: str,
        side: str,
        order_type: str,
        status: str,
        requested_qty: float,
        reference_price: float,
        expected_cost_bps: float,
        event_id: str | None = None,
        filled_qty: float = 0.0,
        avg_fill_price: float | None = None,
        fee_usd: float = 0.0,
        reason_code: str = "",
        updated_at: datetime | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> bool:
        """Record (or merge) a report of one order; True if it changed anything.

        ``event_id`` links the order to its stored decision (None: no decision, e.g. a
        kill-switch flatten); ``expected_cost_bps`` is the one-way cost the model expected for
        this fill (``CostBreakdown.one_way_fee_bps + one_way_price_bps``) and
        ``reference_price`` the price it was measured from (the decision's bar close).
        Repeating a report changes nothing; ``filled_qty`` never decreases and a final status
        never returns to 'pending' (:mod:`trading_core.brain.executions_store`). An unknown
        ``event_id`` raises BrainLibraryError: keep the report and retry after the event."""
        report = executions_store.execution_values(
            client_order_id=client_order_id, event_id=event_id, symbol=symbol, side=side,
            order_type=order_type, status=status, reason_code=reason_code,
            requested_qty=requested_qty, filled_qty=filled_qty, avg_fill_price=avg_fill_price,
            fee_usd=fee_usd, reference_price=reference_price,
            expected_cost_bps=expected_cost_bps, updated_at=updated_at or self._clock(),
            details=details,
        )  # fmt: skip
        changed = self._db.write(lambda s: executions_store.upsert_execution(s, report))
        if changed:
            _log().info("order_execution_recorded", client_order_id=client_order_id,
                        symbol=symbol, status=status, reason_code=reason_code)  # fmt: skip
        return changed

    def order_executions(
        self,
        symbol: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        event_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Order executions by last update (``since`` inclusive, ``until`` exclusive), each
        with its realized costs and ``cost_error_bps`` (realized - expected; None if unfilled)."""
        with self._db.read() as session:
            return executions_store.query_executions(
                session, symbol=symbol, status=status, since=since, until=until,
                event_id=event_id,
            )  # fmt: skip

    # --- shadow results and regime gates -------------------------------------------------

    def record_shadow_result(
        self,
        *,
        challenger: str,
        champion: str | None,
        period_start: datetime,
        period_end: datetime,
        challenger_returns: Sequence[float],
        champion_returns: Sequence[float],
        statistics: Mapping[str, Any],
        decision: str,
    ) -> None:
        """Record a shadow period (same challenger and period again: replaced)."""
        from trading_core.brain import data_store  # here: it loads polars

        self._db.write(
            lambda s: data_store.upsert_shadow_result(
                s, challenger=challenger, champion=champion, period_start=period_start,
                period_end=period_end, challenger_returns=challenger_returns,
                champion_returns=champion_returns, statistics=statistics, decision=decision,
                at=self._clock(),
            )
        )  # fmt: skip
        _log().info("shadow_result_recorded", challenger=challenger, champion=champion,
                 decision=decision)  # fmt: skip

    def shadow_results(self, key: ModelKey) -> list[ShadowResult]:
        from trading_core.brain import data_store  # here: it loads polars

        with self._db.read() as session:
            return data_store.shadow_results(session, key)

    def set_regime_gates(
        self, week_start: date, gates: Mapping[str, Any], *, actor: str, reason: str
    ) -> list[RegimeGateOverride]:
        """Override the gates of the named regimes from ``week_start`` (a Monday) on.
        ``gates`` maps regime -> config ``RegimeGate`` or a mapping with the same keys."""
        from trading_core.brain import data_store  # here: it loads polars

        records = self._db.write(
            lambda s: data_store.append_gates(
                s, week_start, gates, actor=actor, reason=reason, at=self._clock()
            )
        )
        _log().info(
            "regime_gates_set", week_start=str(week_start), regimes=sorted(gates), actor=actor
        )
        return records

    def current_regime_gates(self, as_of: date | None = None) -> dict[str, RegimeGateOverride]:
        """The newest override of each regime in effect on ``as_of`` (default: today, UTC)."""
        current: dict[str, RegimeGateOverride] = {}
        for record in self.regime_gate_history(as_of=as_of or self._clock().date()):
            current[record.regime] = record
        return current

    def regime_gate_history(
        self, regime: str | None = None, as_of: date | None = None
    ) -> list[RegimeGateOverride]:
        from trading_core.brain import data_store  # here: it loads polars

        with self._db.read() as session:
            return data_store.gate_history(session, regime=regime, as_of=as_of)
