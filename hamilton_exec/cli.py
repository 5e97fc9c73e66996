"""``coin-engine hamilton run``: the execution service's entry point (also the container's).

Modes: ``--paper`` (default), ``--shadow`` (decide and log, never order), ``--live`` (only with
the flag AND ``ENGINE__DATA__EXCHANGE__API_KEY``/``..._API_SECRET`` in the environment).
``--replay`` runs over the source's history (``--from``/``--to``, default the last two days of
the source; ``--max-bars N`` stops after N bars; ``--speed`` market seconds per wall second,
e.g. 3600 =
one 1h bar a second, 0 = flat out).
"""

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hamilton_exec.app import build_service
from hamilton_exec.service import RunSummary
from hamilton_exec.settings import HamiltonSettings, Mode, ReplayWindow, check_live_allowed
from trading_core.brain import BrainLibrary
from trading_core.cli.app import config_of
from trading_core.config.models import EngineConfig
from trading_core.market.source import MarketDataSource, make_source
from trading_core.observability.logging import configure_logging

app = typer.Typer(
    help="Hamilton: the execution service (paper, shadow or live).", no_args_is_help=True
)
console = Console()
DEFAULT_REPLAY_DAYS = 2


def _utc(value: str | None) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _source_end(source: MarketDataSource) -> datetime:
    end = getattr(source, "end", None)
    if isinstance(end, datetime):
        return end
    now = datetime.now(UTC)
    return now.replace(minute=0, second=0, microsecond=0)


def replay_window(
    source: MarketDataSource,
    start: str | None,
    end: str | None,
    speed: float,
    max_bars: int | None,
    timeframe_hours: float,
) -> ReplayWindow:
    """``--from``/``--to`` or defaults: the last days (or ``max_bars`` bars) of the source."""
    stop = _utc(end) or _source_end(source)
    default_span = (
        timedelta(hours=max_bars * timeframe_hours)
        if max_bars
        else timedelta(days=DEFAULT_REPLAY_DAYS)
    )
    return ReplayWindow(_utc(start) or stop - default_span, stop, speed)


@app.command("run")
def run(
    ctx: typer.Context,
    paper: Annotated[bool, typer.Option("--paper", help="Paper trading (default).")] = False,
    shadow: Annotated[bool, typer.Option("--shadow", help="Decide and log; never order.")] = False,
    live: Annotated[
        bool, typer.Option("--live", help="Trade for real (needs exchange keys).")
    ] = False,
    replay: Annotated[bool, typer.Option("--replay", help="Replay history at speed.")] = False,
    start: Annotated[str | None, typer.Option("--from", help="Replay start (ISO, UTC).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Replay end (ISO, UTC).")] = None,
    speed: Annotated[
        float,
        typer.Option(
            "--speed", help="Market seconds per wall second (3600: a 1h bar/s); 0 = no wait."
        ),
    ] = 0.0,
    max_bars: Annotated[int | None, typer.Option("--max-bars", help="Stop after N bars.")] = None,
    timeframe: Annotated[
        str | None, typer.Option("--timeframe", help="Default: first of engine.timeframes.")
    ] = None,
    symbols: Annotated[
        str | None, typer.Option("--symbols", help="Comma-separated, e.g. BTC/USDT,ETH/USDT.")
    ] = None,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="Default: hamilton.state_path.")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="Default: observability.prometheus.port.")
    ] = None,
    health_port: Annotated[
        int | None, typer.Option("--health-port", help="Default: hamilton.health_port.")
    ] = None,
) -> None:
    """Run the service until the replay ends, --max-bars, or SIGTERM/SIGINT."""
    config = config_of(ctx)
    mode = _mode(config, paper=paper, shadow=shadow, live=live)
    check_live_allowed(config, live_flag=live, mode=mode)
    source = make_source(config)
    tf = timeframe or config.engine.timeframes[0]
    settings = HamiltonSettings.from_config(
        config,
        mode=mode,
        timeframe=tf,
        state_dir=state_dir,
        symbols=tuple(s.strip() for s in symbols.split(",") if s.strip()) if symbols else (),
        replay=replay_window(source, start, end, speed, max_bars, _hours(tf)) if replay else None,
        max_bars=max_bars,
        metrics_port=metrics_port,
        health_port=health_port,
    )
    configure_logging(
        fmt=config.observability.log_format,
        level=config.observability.log_level,
        path=config.observability.log_path,
        service="hamilton",
        secrets=_secrets(config),
    )
    library = BrainLibrary.from_config(config)
    ctx.call_on_close(library.close)
    prepared = build_service(config, settings, library=library, source=source)
    summary = asyncio.run(prepared.service.run(after_ms=prepared.after_ms))
    _print_summary(summary, prepared.service.engine)


def _mode(config: EngineConfig, *, paper: bool, shadow: bool, live: bool) -> Mode:
    chosen = [name for name, flag in (("paper", paper), ("shadow", shadow), ("live", live)) if flag]
    if len(chosen) > 1:
        raise typer.BadParameter(f"choose one of --paper, --shadow, --live; got {chosen}")
    mode: Mode = chosen[0] if chosen else config.hamilton.mode  # type: ignore[assignment]
    return mode


def _hours(timeframe: str) -> float:
    from trading_core.types import timeframe_ms

    return timeframe_ms(timeframe) / 3_600_000


def _secrets(config: EngineConfig) -> list[str]:
    from trading_core.config import secret_values

    return list(secret_values(config))


def _print_summary(summary: RunSummary, engine: object) -> None:
    from hamilton_exec.engine import HamiltonEngine

    assert isinstance(engine, HamiltonEngine)  # noqa: S101 - built by build_service
    capital = engine.config.risk.initial_capital_usd
    table = Table(
        title=f"Hamilton {engine.settings.mode}: {summary.ticks} bars "
        f"(stopped by {summary.stopped_by})"
    )
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("decision events", str(summary.events))
    for action, count in sorted(summary.actions.items()):
        table.add_row(f"  {action}", str(count))
    table.add_row("orders", str(summary.orders))
    table.add_row("shadow decision events", str(summary.shadow_events))
    table.add_row("equity (USD)", f"{engine.state.equity_usd:,.2f}")
    table.add_row("PnL (USD)", f"{engine.state.equity_usd - capital:,.2f}")
    console.print(table)
    _print_shadow(engine)
    by_engine: dict[str, float] = {}
    for (name, _, _), pnl in engine.ledger.engine_pnl_usd.items():
        by_engine[name] = by_engine.get(name, 0.0) + pnl
    if by_engine:
        top = Table(title="Top engines by attributed PnL")
        top.add_column("engine")
        top.add_column("PnL (USD)", justify="right")
        for name, pnl in sorted(by_engine.items(), key=lambda kv: -kv[1])[:5]:
            top.add_row(name, f"{pnl:,.2f}")
        console.print(top)


def _print_shadow(engine: object) -> None:
    from hamilton_exec.engine import HamiltonEngine

    assert isinstance(engine, HamiltonEngine)  # noqa: S101 - built by build_service
    pairs = engine.shadow.pairs
    if not pairs:
        return
    capital = engine.config.risk.initial_capital_usd
    table = Table(title="Shadow challengers (virtual books beside a mirror of the champion)")
    for column in ("challenger", "champion", "champion return", "challenger return"):
        table.add_column(column, justify="right" if "return" in column else "left")
    for name, pair in sorted(pairs.items()):
        table.add_row(
            name,
            pair.champion or "-",
            f"{pair.mirror.state.equity_usd / capital - 1.0:+.3%}",
            f"{pair.book.state.equity_usd / capital - 1.0:+.3%}",
        )
    console.print(table)
