"""The market-data series of Hamilton: the streaming feed's health and the staleness rule.

* ``hamilton_spread_fallbacks_total{reason}``: decisions whose cost model could not use the
  configured spread source (``book_stale``, ``book_missing``, ``no_book_feed``,
  ``candle_estimate_unknown``);
* ``hamilton_book_age_seconds{symbol}``: age of the book a decision saw;
* ``hamilton_stale_market_data_total{kind}``: coins held for a stale ``book`` or a late ``bar``;
* ``hamilton_feed_reconnects_total{stream}`` (``ohlcv``, ``book``), the bars filled over REST
  after a reconnect or a lost message, the messages dropped (``late_bar``, ``duplicate_bar``,
  ``depth_resync``), the seconds from a bar's close to its tick, and the age of the newest
  message per stream (the heartbeat).
"""

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from trading_core.observability import metric_names as names

CLOSE_TO_TICK_BUCKETS_S: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
SPREAD_FALLBACK_REASONS: Final = (
    "book_stale",
    "book_missing",
    "no_book_feed",
    "candle_estimate_unknown",
)
FEED_STREAMS: Final = ("ohlcv", "book")
DROP_REASONS: Final = ("late_bar", "duplicate_bar", "depth_resync")


class FeedMetrics:
    """Series registered on Hamilton's registry (see the module docstring)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.spread_fallbacks = Counter(
            names.SPREAD_FALLBACKS_TOTAL,
            "Decisions whose spread fell back from the configured source, by reason",
            ["reason"],
            registry=r,
        )
        self.book_age = Gauge(
            names.BOOK_AGE_SECONDS, "Age of the book a decision saw (s)", ["symbol"], registry=r
        )
        self.stale = Counter(
            names.STALE_MARKET_DATA_TOTAL,
            "Coins held for stale market data, by kind (book, bar)",
            ["kind"],
            registry=r,
        )
        self.reconnects = Counter(
            names.FEED_RECONNECTS_TOTAL, "Websocket reconnects by stream", ["stream"], registry=r
        )
        self.bars = Counter(
            names.FEED_BARS_TOTAL,
            "Closed bars kept for a tick, by how they came (stream, rest)",
            ["via"],
            registry=r,
        )
        self.gap_filled = Counter(
            names.FEED_GAP_FILLED_BARS_TOTAL,
            "Closed bars fetched over REST because the stream did not deliver them",
            registry=r,
        )
        self.dropped = Counter(
            names.FEED_DROPPED_TOTAL,
            "Stream messages dropped (late or duplicate bars, depth resyncs)",
            ["reason"],
            registry=r,
        )
        self.close_to_tick = Histogram(
            names.FEED_CLOSE_TO_TICK_SECONDS,
            "Seconds from a bar's close to its tick (all coins' bars in hand or grace over)",
            buckets=CLOSE_TO_TICK_BUCKETS_S,
            registry=r,
        )
        self.rejected = Counter(
            names.FEED_REJECTED_CANDLES_TOTAL,
            "Streamed closed candles the validator rejected, by reason label",
            ["reason"],
            registry=r,
        )
        self.message_age = Gauge(
            names.FEED_MESSAGE_AGE_SECONDS,
            "Seconds since the newest message of each stream (heartbeat)",
            ["stream"],
            registry=r,
        )
        for reason in SPREAD_FALLBACK_REASONS:
            self.spread_fallbacks.labels(reason)
        for stream in FEED_STREAMS:
            self.reconnects.labels(stream)
        for via in ("stream", "rest"):
            self.bars.labels(via)
        for reason in DROP_REASONS:
            self.dropped.labels(reason)
        for kind in ("book", "bar"):
            self.stale.labels(kind)
