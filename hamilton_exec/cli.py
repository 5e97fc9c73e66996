"""``coin-engine hamilton run|kill|resume|status``: the execution service's entry point (also
the container's) and its control surface.

Modes: ``--paper`` (default), ``--shadow`` (decide and log, never order), ``--live`` (only with
the flag AND ``ENGINE__DATA__EXCHANGE__API_KEY``/``..._API_SECRET`` in the environment).
``--replay`` runs over the source's history (``--from``/``--to``, default the last two days of
the source; ``--max-bars N`` stops after N bars; ``--speed`` market seconds per wall second,
e.g. 3600 =
one 1h bar a second, 0 = flat out).

``kill`` / ``resume --reason TEXT`` POST to the running service's health port (token from the
variable ``hamilton.control_token_env`` names); when no service answers they leave the request in
``<state_dir>/control.json``, applied at the next start (or within a second by a service running
without a health port). ``status`` reads ``GET /status``, else the saved state. Bad input prints
one line and exits 2.
"""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from hamilton_exec.runtime.control import (
    ControlAction,
    ControlError,
    call_service,
    check_reason,
    control_token,
    new_request,
    same_state_dir,
    service_url,
    write_control,
)
from hamilton_exec.runtime.service import STATE_FILE, RunSummary, load_state
from hamilton_exec.runtime.status import build_status, render_status
from hamilton_exec.runtime.wiring import build_service
from hamilton_exec.settings import HamiltonSettings, Mode, ReplayWindow, check_live_allowed
from trading_core.brain import BrainLibrary
from trading_core.config.models import EngineConfig
from trading_core.market.source import MarketDataSource
from trading_core.market.sources import make_source
from trading_core.observability.logging import configure_logging

app = typer.Typer(
    help="Hamilton: the execution service (paper, shadow or live).", no_args_is_help=True
)
console = Console()
DEFAULT_REPLAY_DAYS = 2
CONTROL_TIMEOUT_S = 30.0  # a kill waits for the tick in flight
STATUS_TIMEOUT_S = 5.0
SYMBOLS_SHOWN = 10  # symbols named in an unknown --symbols error
StateDirOption = Annotated[
    Path | None, typer.Option("--state-dir", help="Default: hamilton.state_path.")
]
PortOption = Annotated[
    int | None, typer.Option("--port", help="The service's health port (hamilton.health_port).")
]


def config_of(ctx: typer.Context) -> EngineConfig:
    """The invocation's config: the root app's ``ctx.obj["config"]`` (loaded on first use), or the
    default files when this group runs on its own."""
    root = ctx.find_root()
    if root.obj is None:
        from trading_core.config import load_config

        root.obj = {"config": load_config()}
    config: EngineConfig = root.obj["config"]
    return config


def _utc(value: str | None, option: str) -> datetime | None:
    """``--from``/``--to``: a UTC date or datetime; anything else is one line and exit 2."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        _fail(
            f"{option} {value!r} is not a UTC date or datetime; allowed: YYYY-MM-DD or "
            "YYYY-MM-DDTHH:MM[:SS][+00:00], e.g. 2026-10-25"
        )
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
    """``--from``/``--to`` or defaults: the last days (or ``max_bars`` bars) of the source. An
    empty window (``--to`` not after ``--from``) is one line and exit 2."""
    stop = _utc(end, "--to") or _source_end(source)
    default_span = (
        timedelta(hours=max_bars * timeframe_hours)
        if max_bars
        else timedelta(days=DEFAULT_REPLAY_DAYS)
    )
    first = _utc(start, "--from") or stop - default_span
    if stop <= first:
        _fail(
            f"--to {stop.isoformat()} is not after --from {first.isoformat()}; allowed: "
            "a --to later than --from (default --to: the end of the source)"
        )
    return ReplayWindow(first, stop, speed)


def _symbols(source: MarketDataSource, config: EngineConfig, text: str | None) -> tuple[str, ...]:
    """``--symbols``: each must be served by the configured store (parquet, synthetic); a live
    exchange's markets are checked by the exchange itself."""
    wanted = tuple(s.strip() for s in text.split(",") if s.strip()) if text else ()
    if not wanted or config.data.source == "ccxt":
        return wanted
    available = source.list_symbols()
    served = set(available)
    unknown = [s for s in wanted if s not in served]
    if unknown:
        shown = ", ".join(available[:SYMBOLS_SHOWN]) + (
            f" ... ({len(available)} in all)" if len(available) > SYMBOLS_SHOWN else ""
        )
        _fail(
            f"--symbols {','.join(unknown)}: not in the {config.data.source} source; allowed: "
            + (shown or "none (the store is empty: coin-engine data fetch)")
            + "; list them with coin-engine data rank"
        )
    return wanted


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
        symbols=_symbols(source, config, symbols),
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
    from hamilton_exec.tick.hamilton_engine import HamiltonEngine

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
    from hamilton_exec.tick.hamilton_engine import HamiltonEngine

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


# --- kill, resume, status -----------------------------------------------------------------------


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _control(
    ctx: typer.Context,
    action: ControlAction,
    reason: str | None,
    state_dir: Path | None,
    port: int | None,
) -> None:
    config = config_of(ctx)
    try:
        text = check_reason(reason)
    except ControlError as exc:
        _fail(f"{exc} (--reason)")
    url = service_url(config, port)
    answer = None
    if url is not None:
        target = (
            call_service("GET", f"{url}/status", timeout=STATUS_TIMEOUT_S) if state_dir else None
        )
        if target is None or same_state_dir(target[1].get("state_dir"), state_dir):
            answer = call_service(
                "POST",
                f"{url}/control/{action}",
                timeout=CONTROL_TIMEOUT_S,
                body={"reason": text},
                token=control_token(config),
            )
    if answer is not None and answer[0] == 200:
        switch = "ON" if answer[1].get("kill_switch") else "off"
        typer.echo(f"{action} applied by the service at {url}: kill switch {switch} ({text})")
        return
    if answer is not None and answer[0] != 503:  # 503: stopping, the file takes it
        status, body = answer
        detail = body.get("error") or body
        _fail(
            f"the service at {url} refused {action}: HTTP {status}: {detail}",
            2 if status < 500 else 1,
        )
    directory = state_dir or Path(config.hamilton.state_path)
    request = new_request(action, text, origin="cli-file")
    try:
        path = write_control(directory, request)
    except ControlError as exc:
        _fail(str(exc))
    typer.echo(
        f"no service took the request at {url or '(no health port)'}: wrote {action} request "
        f"{request.id} to {path}; the service applies it at its next start, or within a second "
        "if it runs"
    )


@app.command("kill")
def kill(
    ctx: typer.Context,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (required).")] = None,
    state_dir: StateDirOption = None,
    port: PortOption = None,
) -> None:
    """Kill switch: cancel open orders, flatten every position (reduce-only), deny new risk."""
    _control(ctx, "kill", reason, state_dir, port)


@app.command("resume")
def resume(
    ctx: typer.Context,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (required).")] = None,
    state_dir: StateDirOption = None,
    port: PortOption = None,
) -> None:
    """Release the kill switch (the day's loss state still applies)."""
    _control(ctx, "resume", reason, state_dir, port)


def _saved_status(config: EngineConfig, directory: Path, url: str | None) -> dict[str, Any]:
    where = f"no Hamilton service answers on {url}" if url else "the health port is random (0)"
    if not directory.is_dir():
        _fail(f"{where} and state dir {directory} does not exist: give --state-dir or --port")
    try:
        saved = load_state(directory)
    except (OSError, ValueError) as exc:
        _fail(f"cannot read {directory / STATE_FILE}: {exc}")
    if saved is None:
        _fail(f"{where} and {directory} holds no saved state ({STATE_FILE})")
    path = directory / STATE_FILE
    try:
        return build_status(
            saved,
            initial_capital_usd=config.risk.initial_capital_usd,
            source=f"saved state {path}",
            saved_at=datetime.fromtimestamp(path.stat().st_mtime, tz=UTC),
        )
    except ControlError as exc:
        _fail(f"{path}: {exc}")


@app.command("status")
def status(
    ctx: typer.Context,
    state_dir: StateDirOption = None,
    port: PortOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
) -> None:
    """Positions, open orders, PnL, risk state and kill switch, release, clock offset."""
    config = config_of(ctx)
    url = service_url(config, port)
    answer = call_service("GET", f"{url}/status", timeout=STATUS_TIMEOUT_S) if url else None
    live = answer is not None and answer[0] == 200 and "risk" in answer[1]
    if answer is not None and live and same_state_dir(answer[1].get("state_dir"), state_dir):
        view = answer[1]
    else:
        view = _saved_status(config, state_dir or Path(config.hamilton.state_path), url)
    if as_json:
        typer.echo(json.dumps(view, indent=2, sort_keys=True))
    else:
        render_status(view, console)
