"""``coin-engine data fetch|rank``: fill the local candle store from an exchange; rank the
universe of the configured source."""

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from coin_engine.cli.state import config_of
from trading_core.market.fetch import FetchSummary, fetch_to_store
from trading_core.market.parquet_store import (
    ParquetSource,
    ParquetStore,
    universe_snapshot_with_quality,
)
from trading_core.market.ranking import liquidity_ranking
from trading_core.market.source import MarketDataSource
from trading_core.market.sources import make_source
from trading_core.market.synthetic import SyntheticMarket
from trading_core.types import TIMEFRAMES

data_app = typer.Typer(help="Market data: fetch candles into the local store, rank the universe.")
console = Console()


def _utc_date(text: str, option: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{option} {text!r} is not a date like 2024-01-01") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@data_app.command("fetch")
def fetch(
    ctx: typer.Context,
    symbols: Annotated[str, typer.Option(help="Comma-separated, e.g. BTC/USDT,ETH/USDT.")],
    since: Annotated[str, typer.Option(help="First day (UTC), e.g. 2024-01-01.")],
    exchange: Annotated[
        str | None, typer.Option(help="ccxt exchange id; default: data.exchange.name.")
    ] = None,
    timeframe: Annotated[str, typer.Option(help="Candle timeframe, e.g. 1h.")] = "1h",
    until: Annotated[str | None, typer.Option(help="End (UTC, exclusive); default: now.")] = None,
    store: Annotated[
        str | None,
        typer.Option(help="Store folder or URL (s3://bucket/prefix); default: data.store_path."),
    ] = None,
) -> None:
    """Fetch candles from an exchange into the parquet store (resumes; reruns add nothing)."""
    config = config_of(ctx)
    section = config.data.exchange
    if exchange is not None:
        section = section.model_copy(update={"name": exchange})
    wanted = [s.strip() for s in symbols.split(",") if s.strip()]
    if timeframe not in TIMEFRAMES:
        raise typer.BadParameter(f"--timeframe {timeframe!r}; allowed: {', '.join(TIMEFRAMES)}")
    start = _utc_date(since, "--since")
    end = _utc_date(until, "--until") if until else None
    target = ParquetStore(store or config.data.store_path, endpoint_url=config.storage.endpoint_url)
    # imported here: ccxt takes ~0.5 s to import, and only this command needs it (every
    # other `coin-engine` command, `engine run` included, loads this module too)
    from trading_core.market.ccxt_source import CcxtSource

    source = CcxtSource(section, quote=config.engine.quote)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        tasks: dict[str, TaskID] = {s: bar.add_task(s, total=None) for s in wanted}

        def on_progress(symbol: str, done: int, total: int) -> None:
            bar.update(tasks[symbol], completed=done, total=max(total, 1) if total else 1)

        summary = fetch_to_store(
            source,
            target,
            wanted,
            timeframe,
            since=start,
            until=end,
            progress=on_progress,
            on_error="skip",
        )
    _print_summary(summary, target)
    if summary.failed:
        raise typer.Exit(code=1)


@data_app.command("rank")
def rank(
    ctx: typer.Context,
    top: Annotated[int, typer.Option(help="Rows to show.")] = 20,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Rank the universe as it was at this UTC date or datetime (e.g. 2021-07-01 or "
            "2021-07-01T12:00); default: the close of the newest candle in the store (parquet), "
            "the end of the synthetic market, or now (ccxt).",
        ),
    ] = None,
) -> None:
    """Liquidity ranking of the configured source's universe (filters of coin_selection)."""
    moment = _as_of_option(as_of) if as_of is not None else None
    config = config_of(ctx)
    source = make_source(config)
    snapshot, quality = universe_snapshot_with_quality(source, moment or default_as_of(source))
    ranking = liquidity_ranking(
        snapshot, config.coin_selection, quote=config.engine.quote, quality=quality
    )
    console.print(Markdown(ranking.to_markdown(top)))


def default_as_of(source: MarketDataSource) -> datetime:
    """The instant ``data rank`` ranks at without ``--as-of``: the close of the newest stored
    candle for a parquet store (so a historical store ranks on its own last week, not on a
    'now' where no candle exists and every spread is unknown), the synthetic market's end, or
    now for a live venue."""
    if isinstance(source, SyntheticMarket):
        return source.end
    if isinstance(source, ParquetSource):
        newest = source.newest_close()
        if newest is not None:
            return newest
    return datetime.now(UTC)


def _as_of_option(text: str) -> datetime:
    """``--as-of``: a UTC date or datetime; anything else is one line and exit code 2."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        typer.secho(
            f"error: --as-of {text!r} is not a UTC date or datetime; allowed: YYYY-MM-DD or "
            "YYYY-MM-DDTHH:MM[:SS][+00:00], e.g. 2021-07-01",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _print_summary(summary: FetchSummary, store: ParquetStore) -> None:
    for item in summary.fetched:
        state = "up to date" if item.up_to_date else f"+{item.rows_added} rows"
        console.print(f"[green]{item.symbol}[/green] {summary.timeframe}: {state}")
    for symbol, reason in summary.failed.items():
        console.print(f"[red]{symbol}[/red]: {reason}")
    console.print(f"store: {store.root} ({summary.rows_added} rows added)")
