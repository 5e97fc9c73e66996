"""The venue's truth for a reconcile: balances, positions, open orders, clock offset.

* spot: ``cash_usd`` is the quote currency's total balance; ``positions`` the total (free +
  locked) base balance of each asked symbol that holds any (always > 0: a spot account is
  never short);
* linear (USD-M perpetuals): ``cash_usd`` is the quote's WALLET balance, without unrealized
  PnL (the positions are carried with their entry prices and marked by the engine, so adding
  the unrealized PnL here would count it twice); ``positions`` the signed base quantity of each
  perpetual (contracts x contract size, < 0 short), ``prices`` their mark prices.

Open orders: ``fetch_open_orders`` per asked symbol while that weighs less than one call
without a symbol (Binance: 6 per symbol vs 80 on spot, 1 vs 40 on USD-M: up to 13 / 40
symbols), else ONE call without a symbol (ccxt's warning about its weight turned off; orders
of symbols not asked for are then kept too: a stray order matters to a reconcile). Client ids
are mapped back to the engine's ``BASE/QUOTE`` symbols.

Every read is retried with exponential backoff on ccxt's temporary errors (the
``OperationFailed`` family; an ``InvalidNonce`` resyncs the clock first) and raises
:class:`~trading_core.errors.ExchangeTemporaryError` once ``max_retries`` are spent; any other
ccxt error raises :class:`~trading_core.errors.ExchangePermanentError` at once.
"""

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import ccxt

from hamilton_exec.execution.brokers import ExchangeSnapshot
from hamilton_exec.execution.exchange_clock import ExchangeClock
from hamilton_exec.execution.live_client import ExchangeClient, Redactor
from trading_core.config.models import ExchangeSection
from trading_core.market.exchange_calls import call_with_retries
from trading_core.market.schema import split_symbol
from trading_core.observability.logging import get_logger

T = TypeVar("T")
LINEAR_PARAMS: dict[str, Any] = {"type": "swap", "subType": "linear"}
# Binance request weights of GET openOrders: (per symbol, without a symbol)
OPEN_ORDERS_WEIGHT = {"spot": (6, 80), "linear": (1, 40)}


def _log() -> Any:
    return get_logger(__name__)


def engine_symbol(market_symbol: str) -> str:
    """``BTC/USDT:USDT`` -> ``BTC/USDT`` (a spot symbol stays as it is)."""
    return market_symbol.split(":", 1)[0]


def venue_symbol(symbol: str, market_type: str) -> str:
    """The engine's ``BTC/USDT`` as the venue's symbol (``BTC/USDT:USDT`` for a perpetual)."""
    if market_type != "linear" or ":" in symbol:
        return symbol
    return f"{symbol}:{split_symbol(symbol)[1]}"


class SnapshotReader:
    """Reads :class:`~hamilton_exec.execution.brokers.ExchangeSnapshot` objects (blocking,
    retried)."""

    def __init__(
        self,
        client: ExchangeClient,
        *,
        exchange: ExchangeSection,
        market_type: str,
        quote: str,
        clock: ExchangeClock,
        sleep: Callable[[float], None],
        redact: Redactor,
        resync: Callable[[], None],
    ) -> None:
        self.client = client
        self.exchange = exchange
        self.market_type = market_type
        self.quote = quote
        self.clock = clock
        self._sleep = sleep
        self._redact = redact
        self._resync = resync

    def read(self, symbols: Sequence[str]) -> ExchangeSnapshot:
        if self.client.markets is None:
            self.call("load_markets", self.client.load_markets)
        self.clock.maybe_sync()
        if self.market_type == "linear":
            cash, positions, prices = self._linear(symbols)
        else:
            cash, positions, prices = self._spot(symbols)
        return ExchangeSnapshot(
            cash_usd=cash,
            positions=positions,
            open_orders=self._open_orders(symbols),
            taken_at=self.clock.now(),
            clock_offset_ms=self.clock.offset_ms,
            prices=prices,
        )

    def _spot(self, symbols: Sequence[str]) -> tuple[float, dict[str, float], dict[str, float]]:
        balance = self.call("fetch_balance", self.client.fetch_balance)
        totals = balance.get("total") or {}
        positions: dict[str, float] = {}
        for symbol in symbols:
            held = _float(totals.get(split_symbol(symbol)[0]))
            if held > 0.0:
                positions[symbol] = held
        return _float(totals.get(self.quote)), positions, {}

    def _linear(self, symbols: Sequence[str]) -> tuple[float, dict[str, float], dict[str, float]]:
        balance = self.call("fetch_balance", lambda: self.client.fetch_balance(LINEAR_PARAMS))
        cash = _wallet_balance(balance, self.quote)
        venue = [venue_symbol(s, "linear") for s in symbols]
        raw = self.call(
            "fetch_positions", lambda: self.client.fetch_positions(venue, dict(LINEAR_PARAMS))
        )
        positions: dict[str, float] = {}
        prices: dict[str, float] = {}
        entry_notional_usd = 0.0
        for position in raw:
            contracts = _float(position.get("contracts"))
            size = _float(position.get("contractSize")) or 1.0
            qty = contracts * size * (-1.0 if position.get("side") == "short" else 1.0)
            symbol = engine_symbol(str(position.get("symbol", "")))
            if qty != 0.0 and symbol:
                positions[symbol] = positions.get(symbol, 0.0) + qty
                entry_notional_usd += qty * _float(position.get("entryPrice"))
            mark = _float(position.get("markPrice"))
            if mark > 0.0 and symbol:
                prices[symbol] = mark
        # the risk state books a perp like spot (a buy spends its notional, equity = cash +
        # qty x mark), the exchange's wallet does not: cash = wallet - entry notional, so
        # equity = wallet + unrealized PnL on both sides
        return cash - entry_notional_usd, positions, prices

    def _open_orders(self, symbols: Sequence[str]) -> dict[str, tuple[str, ...]]:
        params = dict(LINEAR_PARAMS) if self.market_type == "linear" else {}
        per_symbol, without = OPEN_ORDERS_WEIGHT.get(self.market_type, (6, 80))
        raw: list[dict[str, Any]] = []
        if len(symbols) * per_symbol <= without:
            for symbol in symbols:
                raw += self.call("fetch_open_orders", self._open_orders_of(symbol, params))
        else:
            options = self.client.options
            options.setdefault("fetchOpenOrders", {})["warnWithoutSymbol"] = False
            options["warnOnFetchOpenOrdersWithoutSymbol"] = False
            raw = self.call(
                "fetch_open_orders",
                lambda: self.client.fetch_open_orders(None, None, None, params),
            )
        by_symbol: dict[str, list[str]] = {}
        for order in raw:
            symbol = engine_symbol(str(order.get("symbol", "")))
            client_id = order.get("clientOrderId") or order.get("id")
            if symbol and client_id is not None:
                by_symbol.setdefault(symbol, []).append(str(client_id))
        return {s: tuple(sorted(ids)) for s, ids in sorted(by_symbol.items())}

    def _open_orders_of(
        self, symbol: str, params: dict[str, Any]
    ) -> Callable[[], list[dict[str, Any]]]:
        market_symbol = venue_symbol(symbol, self.market_type)
        return lambda: self.client.fetch_open_orders(market_symbol, None, None, params)

    def call(self, operation: str, fn: Callable[[], T]) -> T:
        """``fn()`` with retries on temporary errors only (ccxt's, and our own
        ExchangeTemporaryError, e.g. from the clock's sync); an InvalidNonce resynchronises
        the clock before the retry (``exchange_calls.call_with_retries``)."""
        return call_with_retries(
            operation,
            fn,
            exchange=self.exchange,
            sleep=self._sleep,
            redact=self._redact.error,
            before_retry=self._before_retry,
        )

    def _before_retry(self, exc: BaseException) -> None:
        if isinstance(exc, ccxt.InvalidNonce):
            self._resync()


def _wallet_balance(balance: dict[str, Any], quote: str) -> float:
    """USD-M: the quote asset's ``walletBalance`` (no unrealized PnL); ccxt's ``total`` (the
    margin balance) only when the raw answer lacks it."""
    info = balance.get("info") or {}
    assets = (info.get("assets") or []) if isinstance(info, dict) else []
    for asset in assets:
        if isinstance(asset, dict) and asset.get("asset") == quote and "walletBalance" in asset:
            return _float(asset["walletBalance"])
    return _float((balance.get("total") or {}).get(quote))


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
