"""Market data for the websocket streams, computed for many symbols at once.

:class:`FastMarket` evaluates the same value-noise path as
:meth:`~hamilton_exec.exchange_sim.market.SyntheticMarket.mids` for a whole set of symbols in one
numpy pass (the operations per element are the same, in the same order, so the numbers are
bit-identical), and builds Binance kline rows exactly as the REST ``/klines`` does: a stream's
final kline (``x: true``) equals the REST row of the same bar. Pinned symbols fall back to the
market's own (pin-aware) function.
"""

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Final

import numpy as np

from hamilton_exec.exchange_sim.book import Book, build_book
from hamilton_exec.exchange_sim.market import (
    _LAYERS,
    _SAMPLES_PER_BAR,
    INTERVAL_MS,
    FloatArray,
    IntArray,
    Kline,
    SyntheticMarket,
    _stream,
    _unit,
    kline_row,
)
from hamilton_exec.exchange_sim.matching import EngineConfig, Venue

_SQRT12: Final = math.sqrt(12.0)


class FastMarket:
    """Vectorised mids, books and kline rows over ``market`` (see module doc)."""

    def __init__(self, market: SyntheticMarket, config: EngineConfig) -> None:
        self.market = market
        self.config = config
        self._keys: dict[str, np.ndarray] = {}

    def _layer_keys(self, ids: Sequence[str]) -> np.ndarray:
        rows = []
        for sym in ids:
            keys = self._keys.get(sym)
            if keys is None:
                seed = self.market.seed
                keys = np.array([_stream(seed, sym, k) for k in range(_LAYERS)], np.uint64)
                self._keys[sym] = keys
            rows.append(keys)
        return np.stack(rows)  # (S, layers)

    def mids(self, ids: Sequence[str], times_ms: IntArray) -> FloatArray:
        """Mids of every symbol of ``ids`` at ``times_ms``: shape ``(len(ids), len(times))``."""
        t = np.asarray(times_ms, dtype=np.int64)[None, :]
        out = np.empty((len(ids), t.shape[1]), dtype=np.float64)
        if not ids:
            return out
        keys = self._layer_keys(ids)
        c = self.market._c
        log_move = np.zeros((len(ids), t.shape[1]), dtype=np.float64)
        for k in range(_LAYERS):
            span = np.int64(1000 << k)
            grid = t // span
            frac = (t - grid * span).astype(np.float64) / float(span)
            g = grid.astype(np.uint64)
            base_key = keys[:, k : k + 1]
            v0 = _unit(g + base_key)
            v1 = _unit(g + np.uint64(1) + base_key)
            noise = (v0 + (v1 - v0) * frac - 0.5) * _SQRT12
            log_move += math.sqrt(c * (1 << k)) * noise
        prices = np.array([self._price(sym) for sym in ids], dtype=np.float64)[:, None]
        out[:] = prices * np.exp(log_move)
        pins = self.market._pins
        for i, sym in enumerate(ids):
            if pins.get(sym):
                out[i] = self.market.mids(sym, t[0])
        return out

    def _price(self, sym: str) -> float:
        spec = self.market.spec(sym)
        if spec is None:
            raise KeyError(sym)
        return spec.price

    def book(self, venue: Venue, sym: str, mid: float, levels: int) -> Book:
        spec = self.market.spec(sym)
        assert spec is not None  # noqa: S101 - stream symbols are validated on subscribe
        cfg = self.config
        return build_book(
            Decimal(repr(mid)),
            spec.futures if venue == "futures" else spec.spot,
            half_spread_bps=cfg.half_spread_bps,
            level_step_bps=cfg.level_step_bps,
            levels=levels,
            level_notional=cfg.level_notional,
        )

    def kline_rows(
        self, venue: Venue, ids: Sequence[str], interval: str, open_ms: int, now_ms: int | None
    ) -> list[Kline]:
        """REST-identical kline rows of the bar opening at ``open_ms`` for every symbol of
        ``ids``: closed (``now_ms`` None) or forming at ``now_ms``."""
        size = INTERVAL_MS[interval]
        step = max(1000, size // _SAMPLES_PER_BAR)
        last = size - 1 if now_ms is None else now_ms - open_ms
        offsets = np.append(np.arange(0, last + 1, step, dtype=np.int64), np.int64(last))
        prices = self.mids(ids, open_ms + offsets)
        seed = self.market.seed
        keys = np.array([_stream(seed, sym, interval, open_ms) for sym in ids], np.uint64)
        units = _unit(keys)
        elapsed = (last + 1) / size
        rows: list[Kline] = []
        for i, sym in enumerate(ids):
            spec = self.market.spec(sym)
            assert spec is not None  # noqa: S101 - validated on subscribe
            tick = (spec.futures if venue == "futures" else spec.spot).tick_size
            row = prices[i]
            unit = float(units[i])
            rows.append(kline_row(spec, tick, int(open_ms), size, row, unit, elapsed))
        return rows


def kline_event(
    sym: str, interval: str, row: Kline, now_ms: int, closed: bool
) -> dict[str, object]:
    """Binance's ``<symbol>@kline_<interval>`` payload for a REST kline row."""
    open_ms = int(row[0])
    trades = int(row[8])
    first = open_ms // 100  # a deterministic, increasing trade id range per bar
    return {
        "e": "kline",
        "E": now_ms,
        "s": sym,
        "k": {
            "t": open_ms,
            "T": int(row[6]),
            "s": sym,
            "i": interval,
            "f": first,
            "L": first + trades - 1,
            "o": row[1],
            "c": row[4],
            "h": row[2],
            "l": row[3],
            "v": row[5],
            "n": trades,
            "x": closed,
            "q": row[7],
            "V": row[9],
            "Q": row[10],
            "B": "0",
        },
    }
