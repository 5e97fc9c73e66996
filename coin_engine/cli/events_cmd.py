"""``coin-engine events query``: DecisionEvents from the Brain Library, with trade outcomes;
``coin-engine events executions``: each order's status, reason code and realized vs expected
cost.

Each decision that opened a trade is linked to its outcome (realised PnL, fees, close time)
by its event id. Output is a rich table, or JSON lines with ``--json``.
"""

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from coin_engine.cli.state import config_of
from trading_core.brain import EXECUTION_STATUSES, BrainLibrary
from trading_core.types import Action

events_app = typer.Typer(
    help="Decision events: query what Hamilton decided and why.", no_args_is_help=True
)
console = Console()


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(
            f"--since {value!r} must be ISO-8601, e.g. 2026-01-31T00:00"
        ) from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def linked_events(
    library: BrainLibrary,
    *,
    symbol: str | None,
    since: datetime | None,
    action: str | None,
    shadow: bool | None,
    limit: int | None,
) -> list[dict[str, Any]]:
    """Events as stored, each with ``outcome`` (its trade's outcome, or None)."""
    events = library.query_decision_events(
        symbol=symbol, since=since, action=action, shadow=shadow, limit=limit
    )
    outcomes = {o["event_id"]: o for o in library.trade_outcomes(symbol=symbol)}
    return [{**event, "outcome": outcomes.get(event["event_id"])} for event in events]


@events_app.command("query")
def query(
    ctx: typer.Context,
    symbol: Annotated[str | None, typer.Option("--symbol", help="e.g. BTC/USDT")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Bar time from (ISO, UTC).")] = None,
    action: Annotated[Action | None, typer.Option("--action", help="buy, sell or hold.")] = None,
    shadow: Annotated[
        bool | None, typer.Option("--shadow/--no-shadow", help="Only shadow (or only real) events.")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """List decision events with their reasons and linked trade outcomes."""
    library = BrainLibrary.from_config(config_of(ctx))
    ctx.call_on_close(library.close)
    rows = linked_events(
        library,
        symbol=symbol,
        since=_since(since),
        action=action.value if action else None,
        shadow=shadow,
        limit=limit,
    )
    if not rows:
        _no_match_hint(symbol=symbol, since=since, action=action, shadow=shadow)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, sort_keys=True, default=str))
        return
    table = Table(title=f"{len(rows)} decision event(s)")
    for column in ("bar (UTC)", "symbol", "regime", "action", "score", "net bps", "reasons", "pnl"):
        table.add_column(
            column, justify="right" if column in ("score", "net bps", "pnl") else "left"
        )
    for row in rows:
        outcome = row["outcome"]
        table.add_row(
            str(row["timestamp"])[:16],
            row["symbol"],
            row["regime"],
            row["action"],
            f"{row['consensus_score']:+.3f}",
            f"{row['net_edge_bps']:+.2f}",
            ",".join(row.get("metadata", {}).get("reasons", [])),
            "-" if outcome is None else f"{outcome['pnl_usd']:+.2f}",
        )
    console.print(table)


def _no_match_hint(**filters: object) -> None:
    """An empty answer is no error (exit 0: scripts may count on it), but says why on stderr:
    which filters matched nothing, and how to see what there is."""
    given = " ".join(
        f"--{name}" if value is True else f"--no-{name}" if value is False else f"--{name} {value}"
        for name, value in filters.items()
        if value is not None
    )
    where = f"matches {given}" if given else "is stored yet (Hamilton writes them as it decides)"
    typer.secho(
        f"hint: no decision event {where}; see the newest events: coin-engine events query "
        "--limit 20",
        fg=typer.colors.YELLOW,
        err=True,
    )


def _bps(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


@events_app.command("executions")
def executions(
    ctx: typer.Context,
    symbol: Annotated[str | None, typer.Option("--symbol", help="e.g. BTC/USDT")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help=f"One of {', '.join(EXECUTION_STATUSES)}.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Last update from (ISO, UTC).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """List order executions: status, reason code, fills and realized vs expected cost (bps)."""
    if status is not None and status not in EXECUTION_STATUSES:
        raise typer.BadParameter(f"--status {status!r}; allowed: {', '.join(EXECUTION_STATUSES)}")
    library = BrainLibrary.from_config(config_of(ctx))
    ctx.call_on_close(library.close)
    rows = library.order_executions(symbol=symbol, status=status, since=_since(since))
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, sort_keys=True, default=str))
        return
    table = Table(title=f"{len(rows)} order execution(s)")
    columns = ("updated (UTC)", "client order id", "symbol", "side", "status", "reason",
               "filled/req", "avg price", "expected bps", "realized bps", "error bps")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right" if column.endswith(("bps", "price")) else "left")
    for row in rows:
        price = row["avg_fill_price"]
        table.add_row(
            str(row["updated_at"])[:19],
            row["client_order_id"],
            row["symbol"],
            row["side"],
            row["status"],
            row["reason_code"] or "-",
            f"{row['filled_qty']:g}/{row['requested_qty']:g}",
            "-" if price is None else f"{price:g}",
            _bps(row["expected_cost_bps"]),
            _bps(row["realized_cost_bps"]),
            _bps(row["cost_error_bps"]),
        )
    console.print(table)
