"""The exchange's clock, measured: offset = server time - local midpoint of a ``fetch_time``.

Binance refuses a signed request whose timestamp is more than ``recvWindow`` behind (or 1 s
ahead of) its own clock (-1021, ccxt's ``InvalidNonce``), and a candle is closed by the
exchange's clock, not ours. :class:`ExchangeClock` measures the offset every
``time_sync_interval_s`` (and on demand, e.g. after an ``InvalidNonce``), hands it to ccxt
(``options['timeDifference']``, ccxt's sign: local - server) so that every signed request
carries the exchange's time, and says whether the local clock is close enough to trust
(``skew_ok``: ``|offset| <= max_clock_skew_ms``). The live broker refuses new orders while it
is not; the polling feed judges candle closedness with :meth:`ExchangeClock.now`.
"""

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import ccxt

from trading_core.config.models import ExchangeSection
from trading_core.errors import ExchangePermanentError, ExchangeTemporaryError
from trading_core.observability.logging import get_logger


def _log() -> Any:
    return get_logger(__name__)


class TimeClient(Protocol):
    """The part of a ccxt exchange the clock uses."""

    options: dict[str, Any]

    def fetch_time(self, params: dict[str, Any] = ...) -> int | None: ...


def wall_time_s() -> float:
    """The local wall clock in seconds (the default ``now`` of the clock and the broker)."""
    return time.time()


class ExchangeClock:
    """Measured exchange clock. Thread-safe; never syncs on its own (call :meth:`maybe_sync`
    periodically, :meth:`sync` on demand).

    ``fetch_time`` returns the exchange's time in ms; ``now`` is the local wall clock in
    seconds; ``on_offset`` receives every new offset (ms, exchange - local)."""

    def __init__(
        self,
        fetch_time: Callable[[], int | None],
        *,
        max_skew_ms: int,
        sync_interval_s: float,
        now: Callable[[], float] = wall_time_s,
        on_offset: Callable[[int], None] | None = None,
        name: str = "exchange",
    ) -> None:
        self._fetch_time = fetch_time
        self.max_skew_ms = max_skew_ms
        self.sync_interval_s = sync_interval_s
        self._now = now
        self._on_offset = on_offset
        self.name = name
        self._lock = threading.Lock()
        self._offset_ms = 0
        self._synced_at: float | None = None
        self._rtt_ms = 0

    @classmethod
    def for_client(
        cls,
        client: TimeClient,
        exchange: ExchangeSection,
        *,
        now: Callable[[], float] = wall_time_s,
    ) -> "ExchangeClock":
        """A clock over a ccxt client that also keeps ccxt's ``timeDifference`` in step (and
        turns ccxt's own ``adjustForTimeDifference`` on, so ``load_markets`` resyncs too)."""
        client.options["adjustForTimeDifference"] = True

        def _to_ccxt(offset_ms: int) -> None:
            client.options["timeDifference"] = -offset_ms  # ccxt: local - server

        return cls(
            client.fetch_time,
            max_skew_ms=exchange.max_clock_skew_ms,
            sync_interval_s=exchange.time_sync_interval_s,
            now=now,
            on_offset=_to_ccxt,
            name=exchange.name,
        )

    # --- readings ---------------------------------------------------------------------------

    @property
    def offset_ms(self) -> int:
        """Exchange minus local, ms (0 until the first sync)."""
        with self._lock:
            return self._offset_ms

    @property
    def synced(self) -> bool:
        with self._lock:
            return self._synced_at is not None

    @property
    def skew_ok(self) -> bool:
        """``|offset| <= max_skew_ms`` (True before the first sync: nothing measured yet;
        callers that must know check :attr:`synced`)."""
        return abs(self.offset_ms) <= self.max_skew_ms

    @property
    def sync_due(self) -> bool:
        with self._lock:
            synced_at = self._synced_at
        return synced_at is None or self._now() - synced_at >= self.sync_interval_s

    def local_ms(self) -> int:
        return int(self._now() * 1000)

    def now_ms(self) -> int:
        """The exchange's time now, ms since the epoch."""
        return self.local_ms() + self.offset_ms

    def now(self) -> datetime:
        """The exchange's time now (UTC)."""
        return datetime.fromtimestamp(self.now_ms() / 1000, tz=UTC)

    # --- syncing ----------------------------------------------------------------------------

    def sync(self) -> int:
        """Measure the offset now; returns it (ms). Raises ExchangeTemporaryError /
        ExchangePermanentError when the exchange cannot tell its time."""
        before = self._now()
        try:
            server_ms = self._fetch_time()
        except ccxt.OperationFailed as exc:
            raise ExchangeTemporaryError(
                f"{self.name} fetch_time failed: {type(exc).__name__}"
            ) from exc
        except ccxt.BaseError as exc:
            raise ExchangePermanentError(
                f"{self.name} fetch_time failed: {type(exc).__name__}"
            ) from exc
        after = self._now()
        if server_ms is None:
            raise ExchangeTemporaryError(f"{self.name} fetch_time returned no serverTime")
        offset = round(int(server_ms) - (before + after) * 500.0)
        with self._lock:
            self._offset_ms = offset
            self._synced_at = after
            self._rtt_ms = round((after - before) * 1000.0)
        if self._on_offset is not None:
            self._on_offset(offset)
        ok = abs(offset) <= self.max_skew_ms
        (_log().info if ok else _log().warning)(
            "exchange_clock_synced" if ok else "exchange_clock_skew",
            exchange=self.name,
            offset_ms=offset,
            rtt_ms=self._rtt_ms,
            max_skew_ms=self.max_skew_ms,
        )
        return offset

    def refuse(self, **context: object) -> None:
        """Log that an order was refused for the skew (with ``context``: symbol, id)."""
        _log().warning(
            "order_refused_clock_skew",
            exchange=self.name,
            offset_ms=self.offset_ms,
            max_skew_ms=self.max_skew_ms,
            **context,
        )

    def maybe_sync(self) -> bool:
        """Sync when due; False (logged) when the sync failed, True otherwise."""
        if not self.sync_due:
            return True
        try:
            self.sync()
        except (ExchangeTemporaryError, ExchangePermanentError) as exc:
            _log().warning("exchange_clock_sync_failed", exchange=self.name, error=str(exc))
            return False
        return True
