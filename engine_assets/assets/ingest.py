"""ohlcv: candles of the day's active coins into the parquet store the Dask workers read.

BTC/{quote}, the market reference (relative strength, the BTC features), is optional as it is in
training and in Hamilton: when the source does not list it, or fetching it fails, the asset
logs why, says so in its metadata (``btc_reference``) and goes on without it.

The asset is the DAG's one network-bound step, so it carries a Dagster ``RetryPolicy``: each
exchange call already retries for seconds (trading_core.market.exchange_calls); the policy covers
the longer outages (exchange maintenance, a rate-limit ban, a restarting Brain Library database)
by re-running the whole step after about 1, 3 and 7 minutes (Dagster's exponential backoff,
(2**n - 1) x 60 s, +/- up to 60 s of jitter so parallel runs spread out): 11 minutes of waiting on
average, 14 at most, well inside run monitoring's max_runtime_seconds. Only transient errors are
retried: the type says which (trading_core.errors), and anything else fails the step at once, since
rerunning it with the same input cannot succeed."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import dagster as dg

from engine_assets.assets.universe import partition_end
from engine_assets.logging import bind_run
from engine_assets.partitions import daily_partitions, partition_days, single_run_backfill
from engine_assets.resources import BrainLibraryResource, EngineConfigResource, MarketDataResource
from trading_core.config import EngineConfig
from trading_core.errors import RetryableError
from trading_core.market.fetch import fetch_to_store
from trading_core.market.parquet_store import ParquetStore
from trading_core.market.source import MarketDataSource
from trading_core.observability.logging import get_logger
from trading_core.training.universe import active_symbols

# errors worth a later attempt: the project's retryable tree and the network's own
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (RetryableError, ConnectionError, TimeoutError)
# passed on unchanged too: Dagster's own errors are its contract (e.g. a Failure raised inside)
_PASS_THROUGH: tuple[type[Exception], ...] = (*TRANSIENT_ERRORS, dg.DagsterError, dg.Failure)
INGEST_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=60, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


@contextmanager
def retry_only_transient(step: str) -> Iterator[None]:
    """Let transient errors reach the RetryPolicy; turn any other error into a Dagster
    ``Failure`` that the policy does not retry (a deterministic error would otherwise fail 4 times
    over 11-14 minutes)."""
    try:
        yield
    except _PASS_THROUGH:
        raise
    except Exception as exc:
        raise dg.Failure(
            description=f"{step}: {type(exc).__name__}: {exc} (not retried: not a transient error)",
            allow_retries=False,
        ) from exc


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    deps=["liquidity_ranking"],
    group_name="data",
    kinds={"parquet"},
    retry_policy=INGEST_RETRY_POLICY,
    description="Ingest/update history_days of candles for the active coins (and BTC, the "
    "optional relative-strength reference, where the source has it) for every configured "
    "timeframe into the parquet store.",
)
def ohlcv(
    context: dg.AssetExecutionContext,
    engine_config: EngineConfigResource,
    market: MarketDataResource,
    brain: BrainLibraryResource,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    with retry_only_transient("ohlcv"):
        config = engine_config.load()
        bind_run(context, config)
        return _ingest(context, config, market, brain)


def _ingest(
    context: dg.AssetExecutionContext,
    config: EngineConfig,
    market: MarketDataResource,
    brain: BrainLibraryResource,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    source, store = market.source(), market.store()
    rows_added: dict[str, int] = dict.fromkeys(config.engine.timeframes, 0)
    symbols: list[str] = []
    btc = f"BTC/{config.engine.quote}"
    btc_reference = "fetched"
    for key in partition_days(context):
        as_of = partition_end(key)
        ranking = brain.open().load_ranking(as_of.date() - timedelta(days=1))
        symbols = active_symbols(ranking, config.engine.active_coins, quote=config.engine.quote)
        since = as_of - timedelta(days=config.data.history_days)
        for timeframe in config.engine.timeframes:
            summary = fetch_to_store(source, store, symbols, timeframe, since=since, until=as_of)
            rows_added[timeframe] += summary.rows_added
            if btc not in symbols:
                added, btc_reference = _fetch_reference(
                    source, store, btc, timeframe, since=since, until=as_of
                )
                rows_added[timeframe] += added
                if btc_reference != "fetched":
                    context.log.warning(f"ohlcv: BTC reference {btc_reference}")
            else:
                btc_reference = "fetched (an active coin)"
        for symbol in symbols:
            store.write_funding(symbol, source.funding_rates(symbol, start=since, end=as_of))
    context.log.info(f"ohlcv: {len(symbols)} active coins, rows added {rows_added}")
    return dg.MaterializeResult(
        metadata={
            "active_coins": dg.MetadataValue.json(symbols),
            "rows_added": dg.MetadataValue.json(rows_added),
            "btc_reference": btc_reference,
            "store": dg.MetadataValue.path(str(store.root)),
        }
    )


def _fetch_reference(
    source: MarketDataSource,
    store: ParquetStore,
    symbol: str,
    timeframe: str,
    *,
    since: datetime,
    until: datetime,
) -> tuple[int, str]:
    """Fetch the optional market reference: (rows added, what happened)."""
    if symbol not in source.list_symbols():
        reason = f"skipped: {symbol} is not listed by source {source.name!r}"
    else:
        summary = fetch_to_store(
            source, store, [symbol], timeframe, since=since, until=until, on_error="skip"
        )
        if not summary.failed:
            return summary.rows_added, "fetched"
        reason = f"skipped: {summary.failed[symbol]}"
    get_logger(__name__).warning(
        "btc_reference_skipped",
        symbol=symbol,
        timeframe=timeframe,
        reason=reason,
        effect="training and Hamilton run without the BTC features (they are optional)",
    )
    return 0, reason
