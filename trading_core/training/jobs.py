"""Units of distributed work: one coin x timeframe per task.

A task reads its candles from the parquet store itself (workers never receive bars through the
scheduler), prepares the coin once and then trains or validates every regime of it, so each task
is large enough (well over 100 ms) to amortise scheduling.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import polars as pl

from trading_core.config.models import EngineConfig
from trading_core.errors import InsufficientDataError
from trading_core.market.parquet_store import ParquetStore
from trading_core.market.schema import split_symbol
from trading_core.training.dataset import CoinFrame, prepare_coin_frame

BTC_SYMBOL_BASE = "BTC"


@dataclass(frozen=True)
class CoinJob:
    """Train or validate ``regimes`` of ``symbol`` on ``timeframe`` with data before ``as_of``."""

    symbol: str
    timeframe: str
    as_of: datetime
    partition_date: str
    store_root: str
    config: EngineConfig
    regimes: tuple[str, ...]
    device: Literal["cpu", "cuda"] = "cpu"

    def __post_init__(self) -> None:
        split_symbol(self.symbol)
        if self.as_of.tzinfo is None or self.as_of.utcoffset() != timedelta(0):
            raise ValueError(f"as_of {self.as_of!r} must be timezone-aware UTC")
        if not self.regimes:
            raise ValueError(f"{self.symbol} {self.timeframe}: no regimes to work on")

    @property
    def coin(self) -> str:
        return split_symbol(self.symbol)[0]

    @property
    def key(self) -> str:
        return f"{self.coin}_{self.timeframe}"


def load_coin_frame(job: CoinJob) -> CoinFrame:
    """The job's coin prepared from the store: ``history_days`` of bars before ``as_of``, read
    through :meth:`~trading_core.market.parquet_store.ParquetStore.read_clean` (bad candles
    dropped and logged by reason). The BTC reference is optional: None where the store has none."""
    store = ParquetStore(job.store_root, endpoint_url=job.config.storage.endpoint_url)
    start = job.as_of - timedelta(days=job.config.data.history_days)
    bars = store.read_clean(job.symbol, job.timeframe, start=start, end=job.as_of).frame
    if bars.height == 0:
        raise InsufficientDataError(
            f"{job.symbol} {job.timeframe}: no candles in the store at {job.store_root} between "
            f"{start.isoformat()} and {job.as_of.isoformat()}; materialize the ohlcv asset first"
        )
    quote = split_symbol(job.symbol)[1]
    btc_symbol = f"{BTC_SYMBOL_BASE}/{quote}"
    btc = bars if job.symbol == btc_symbol else _optional(store, btc_symbol, job, start)
    funding = store.read_funding(job.symbol)
    return prepare_coin_frame(
        job.symbol,
        job.timeframe,
        bars,
        detection=job.config.regime_gates.detection,
        label_horizon_bars=job.config.training.model.label_horizon_bars,
        btc_bars=btc,
        funding=funding.filter(pl.col("timestamp") < job.as_of) if funding.height else None,
        ml_scale_bps=job.config.consensus.ml_scale_bps,
    )


def _optional(
    store: ParquetStore, symbol: str, job: CoinJob, start: datetime
) -> pl.DataFrame | None:
    frame = store.read_clean(symbol, job.timeframe, start=start, end=job.as_of).frame
    return frame if frame.height else None
