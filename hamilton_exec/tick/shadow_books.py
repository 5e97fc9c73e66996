"""Shadow trading: every challenger of the served release trades beside a mirror of its champion.

For each key with a shadow model in the release, a *pair* of virtual paper books trades the
coin: the champion mirror (the coin's production serving set) and the challenger (the same set
with the challenger in place of its regime's model). Both books start from the coin's memory at
that bar (reliability evidence) and ``risk.initial_capital_usd``, see the same bars, gates,
costs and risk limits, and fill at the next bar's open with the cost model's price and fee (the
paper broker's rule): they differ only in the model. The mirror exists because the real book is
a portfolio (shared equity, exposure and daily-loss limits across coins, real fills); comparing
a challenger with it would mix the model with everything else. Nothing of the pairs reaches the
exchange, the real risk state, the real ledger or the real broker.

The challenger's decisions are DecisionEvents stored with ``shadow=True``; their metadata names
the challenger (``model_version``), the champion (``shadow_of``) and the regime model that
decided the bar (``decided_by``). The mirror's decisions repeat the production decisions on an
isolated book and are not stored.

Per pair and UTC day, the books' per-bar net returns (equity marked at each close) and the net
returns of the trades they closed form a :class:`~trading_core.shadow.periods.ShadowPeriod`,
queued to the event sink (and so to the Brain Library's shadow results) when the day ends, and
checkpointed when the service stops; recording the same day again replaces it. A pair ends when
its challenger leaves the release or the key's champion changes (its period is queued then).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hamilton_exec.accounting.event_store import EventSink
from hamilton_exec.execution.brokers import PaperBroker, order_request
from hamilton_exec.tick.coin_decisions import (
    CoinDecision,
    CoinMemory,
    DecisionContext,
    PreparedDecision,
    decide_prepared,
    prepare_decisions,
)
from hamilton_exec.tick.newest_bars import NewestBars
from hamilton_exec.tick.served_release import Challenger, CoinModels, ServedRelease
from trading_core.decision import EventOrigin
from trading_core.events import DecisionEvent
from trading_core.regime import RegimeGates
from trading_core.risk import RiskEnforcer, RiskState
from trading_core.shadow.periods import ShadowPeriod
from trading_core.shadow.trades import account_fill
from trading_core.types import Action

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_MS = 86_400_000


def _utc(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=int(ms))


@dataclass
class VirtualBook:
    """One isolated paper book for one coin (its own memory, risk state and pending order)."""

    memory: CoinMemory
    state: RiskState
    broker: PaperBroker = field(default_factory=PaperBroker)
    equity_usd: float = 0.0  # at the previous close
    open_fee_usd: float = 0.0  # entry fees of the open position not yet charged to a trade

    @classmethod
    def start(cls, memory: CoinMemory, state: RiskState) -> "VirtualBook":
        copy = CoinMemory.from_dict(memory.to_dict())
        return cls(copy, state, PaperBroker(), state.equity_usd)

    def fill_at_open(
        self, symbol: str, open_price: float, opened_at: datetime, enforcer: RiskEnforcer
    ) -> float | None:
        """Fill the pending order at this bar's open; the closed trade's return, if any."""
        report = self.broker.fill_at_open(symbol, open_price, opened_at)
        if report is None or report.fill is None:
            return None
        fill = report.fill
        position = self.state.positions.get(symbol)
        accounting = account_fill(
            position.qty if position else 0.0,
            position.avg_entry_price if position else 0.0,
            self.open_fee_usd,
            fill_qty=fill.qty,
            fill_price=fill.price,
            fill_fee_usd=fill.fee_usd,
        )
        self.state = enforcer.apply_fill(self.state, fill)
        self.open_fee_usd = accounting.open_fee_usd if symbol in self.state.positions else 0.0
        return accounting.trade_return

    def decide(
        self,
        prepared: PreparedDecision,
        context: DecisionContext,
        *,
        origin: EventOrigin,
        model_version: str | None = None,
    ) -> tuple[CoinDecision, float]:
        """Decide the prepared bar (its memory already advanced by ``prepare_decisions``),
        queue its virtual order, and return the bar's net return."""
        outcome, self.state = decide_prepared(
            prepared, self.state, context, origin=origin, model_version=model_version
        )
        if outcome.decision.action is not Action.HOLD:
            self.broker.submit(order_request(outcome.decision, outcome.inputs))
        equity = self.state.equity_usd
        bar_return = equity / self.equity_usd - 1.0
        self.equity_usd = equity
        return outcome, bar_return

    def to_dict(self) -> dict[str, Any]:
        return {
            "memory": self.memory.to_dict(),
            "state": self.state.to_dict(),
            "broker": self.broker.to_dict(),
            "equity_usd": self.equity_usd,
            "open_fee_usd": self.open_fee_usd,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "VirtualBook":
        broker = PaperBroker()
        broker.restore(dict(data["broker"]))
        return cls(
            CoinMemory.from_dict(dict(data["memory"])),
            RiskState.from_dict(data["state"]),
            broker,
            float(data["equity_usd"]),
            float(data["open_fee_usd"]),
        )


@dataclass
class OpenPeriod:
    """The pair's bars of the current UTC day so far."""

    first_open_ms: int
    last_open_ms: int
    champion_returns: list[float] = field(default_factory=list)
    challenger_returns: list[float] = field(default_factory=list)
    champion_trades: list[float] = field(default_factory=list)
    challenger_trades: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "OpenPeriod":
        return cls(**dict(data))


@dataclass
class ShadowPair:
    """The champion mirror and the challenger book of one shadow key."""

    symbol: str
    challenger: str
    champion: str | None
    mirror: VirtualBook
    book: VirtualBook
    period: OpenPeriod | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "challenger": self.challenger,
            "champion": self.champion,
            "mirror": self.mirror.to_dict(),
            "book": self.book.to_dict(),
            "period": None if self.period is None else self.period.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ShadowPair":
        period = data.get("period")
        return cls(
            str(data["symbol"]),
            str(data["challenger"]),
            None if data.get("champion") is None else str(data["champion"]),
            VirtualBook.from_dict(data["mirror"]),
            VirtualBook.from_dict(data["book"]),
            None if period is None else OpenPeriod.from_dict(period),
        )


class ShadowTrader:
    """The pairs of one Hamilton engine (module docstring). Not thread-safe: the tick owns it."""

    def __init__(
        self,
        context: DecisionContext,
        enforcer: RiskEnforcer,
        *,
        capital_usd: float,
        bar_ms: int,
        sink: EventSink,
    ) -> None:
        self.context, self.enforcer, self.sink = context, enforcer, sink
        self.capital_usd, self.bar_ms = capital_usd, bar_ms
        self.pairs: dict[str, ShadowPair] = {}  # challenger name -> pair
        self._synced_release: int | None = None

    def sync(self, release: ServedRelease | None) -> None:
        """End the pairs the release no longer backs (challenger gone or champion changed)."""
        release_id = None if release is None else release.id
        if release_id == self._synced_release:
            return
        self._synced_release = release_id
        wanted = set() if release is None else {
            (c.name, c.champion) for cs in release.shadow.values() for c in cs
        }  # fmt: skip
        for name, pair in list(self.pairs.items()):
            if (name, pair.champion) not in wanted:
                self._emit(pair)
                del self.pairs[name]

    def step(
        self,
        batch: NewestBars,
        index: int,
        release: ServedRelease | None,
        production_memory: CoinMemory,
        gates: RegimeGates,
        *,
        invalid_reason: str,
        origin: EventOrigin,
    ) -> list[DecisionEvent]:
        """Fill, decide and account every pair of the coin of row ``index`` of ``batch`` on its
        newest bar (call before the production decision advances ``production_memory``); the
        challengers' events."""
        if release is None:
            return []
        symbol = batch.symbols[index]
        coin = symbol.split("/", maxsplit=1)[0]
        open_ms = int(batch.timestamps_ms[index])
        events = []
        for challenger in release.challengers(coin):
            pair = self.pairs.get(challenger.name)
            if pair is None:
                pair = self._start(symbol, challenger, production_memory, open_ms)
            event = self._step_pair(pair, challenger, release.coin(coin), batch, index, gates,
                                    invalid_reason, origin)  # fmt: skip
            self.sink.add_event(event, release_id=release.id, shadow=True)
            events.append(event)
        return events

    def _start(
        self, symbol: str, challenger: Challenger, memory: CoinMemory, open_ms: int
    ) -> ShadowPair:
        state = self.enforcer.initial_state(self.capital_usd, _utc(open_ms))
        pair = ShadowPair(
            symbol,
            challenger.name,
            challenger.champion,
            VirtualBook.start(memory, state),
            VirtualBook.start(memory, state),
        )
        self.pairs[challenger.name] = pair
        return pair

    def _step_pair(
        self,
        pair: ShadowPair,
        challenger: Challenger,
        champion_models: CoinModels,
        batch: NewestBars,
        index: int,
        gates: RegimeGates,
        invalid_reason: str,
        origin: EventOrigin,
    ) -> DecisionEvent:
        open_ms = int(batch.timestamps_ms[index])
        period = self._period(pair, open_ms)
        opened_at, open_price = _utc(open_ms), float(batch.column("open")[index])
        for book, trades in ((pair.mirror, period.champion_trades),
                             (pair.book, period.challenger_trades)):  # fmt: skip
            closed = book.fill_at_open(pair.symbol, open_price, opened_at, self.enforcer)
            if closed is not None:
                trades.append(closed)
        # the production path, one row per book: the mirror's (champion models) and the
        # challenger's, each with its own memory; without the live book (no-feed spread rule)
        mirror_bar, challenger_bar = prepare_decisions(
            batch.take([index, index]),
            [champion_models, challenger.models],
            [pair.mirror.memory, pair.book.memory],
            self.context,
            gates,
            invalid_reasons=[invalid_reason, invalid_reason],
        )
        _, champion_return = pair.mirror.decide(mirror_bar, self.context, origin=origin)
        decided_by = challenger.models.version_for(int(batch.regimes[index]))
        outcome, challenger_return = pair.book.decide(
            challenger_bar, self.context, model_version=challenger.name,
            origin=origin.with_extras(
                shadow=True, shadow_of=challenger.champion, decided_by=decided_by
            ),
        )  # fmt: skip
        period.champion_returns.append(champion_return)
        period.challenger_returns.append(challenger_return)
        period.last_open_ms = open_ms
        return outcome.event

    def _period(self, pair: ShadowPair, open_ms: int) -> OpenPeriod:
        """The pair's open period for the bar at ``open_ms`` (a new UTC day closes the old)."""
        current = pair.period
        if current is not None and current.first_open_ms // _DAY_MS != open_ms // _DAY_MS:
            self._emit(pair)
            current = None
        if current is None:
            current = OpenPeriod(open_ms, open_ms)
            pair.period = current
        return current

    def _emit(self, pair: ShadowPair) -> None:
        period = pair.period
        pair.period = None
        if period is not None and period.champion_returns:
            self.sink.add_shadow_period(self._as_record(pair, period))

    def _as_record(self, pair: ShadowPair, period: OpenPeriod) -> ShadowPeriod:
        return ShadowPeriod(
            challenger=pair.challenger,
            champion=pair.champion,
            first_bar_open=_utc(period.first_open_ms),
            last_bar_open=_utc(period.last_open_ms),
            bar_ms=self.bar_ms,
            champion_returns=tuple(period.champion_returns),
            challenger_returns=tuple(period.challenger_returns),
            champion_trades=tuple(period.champion_trades),
            challenger_trades=tuple(period.challenger_trades),
        )

    def checkpoint(self) -> int:
        """Queue every open period as it stands (kept open: a resumed run completes it)."""
        queued = 0
        for pair in self.pairs.values():
            if pair.period is not None and pair.period.champion_returns:
                self.sink.add_shadow_period(self._as_record(pair, pair.period))
                queued += 1
        return queued

    def to_dict(self) -> dict[str, Any]:
        return {
            "pairs": [p.to_dict() for p in self.pairs.values()],
            "release_id": self._synced_release,
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        pairs = [ShadowPair.from_dict(p) for p in data.get("pairs") or []]
        self.pairs = {p.challenger: p for p in pairs}
        self._synced_release = data.get("release_id")
