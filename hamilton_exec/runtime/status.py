"""The status view of a Hamilton process: positions, open orders, PnL, risk state, kill switch.

:func:`build_status` turns an engine snapshot (``HamiltonEngine.snapshot()``, live from
``GET /status`` or as saved in ``hamilton_state.json``) into plain JSON-able data;
:func:`render_status` prints it as rich tables (``coin-engine hamilton status``).

The view is built field by field from known keys, never by copying the snapshot, so nothing
else it may carry (exchange keys, tokens, broker internals) can reach the output. Keys a
snapshot does not have yet are read with defaults.

PnL: ``unrealized`` is ``sum(qty x (mark - entry))`` over the open positions; ``total`` is
equity minus the initial capital; ``realized`` is the snapshot's own figure when it has one,
else ``total - unrealized`` (closed trades net of fees and funding).
"""

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from hamilton_exec.runtime.control import ControlError
from trading_core.risk import RiskState

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def _positions(state: RiskState) -> list[dict[str, Any]]:
    return [
        {
            "symbol": symbol,
            "qty": p.qty,
            "entry_price": p.avg_entry_price,
            "mark_price": p.mark_price,
            "notional_usd": p.notional_usd,
            "unrealized_pnl_usd": p.qty * (p.mark_price - p.avg_entry_price),
            "bars_held": p.bars_held,
        }
        for symbol, p in sorted(state.positions.items())
    ]


def _order_row(order: Mapping[str, Any], filled_qty: float | None) -> dict[str, Any]:
    signed = float(order.get("signed_qty") or 0.0)
    return {
        "client_order_id": str(order.get("client_order_id", "")),
        "symbol": str(order.get("symbol", "")),
        "side": "buy" if signed > 0 else "sell",
        "qty": abs(signed),
        "filled_qty": filled_qty,
        "order_type": str(order.get("order_type", "market")),
        "limit_price": order.get("limit_price"),
        "reduce_only": bool(order.get("reduce_only", False)),
        "decided_at": order.get("decided_at"),
    }


def _open_orders(snapshot: Mapping[str, Any]) -> list[dict[str, Any]]:
    """From ``open_orders`` (a list of orders), else the engine's order book (``orders``:
    client id -> order and fills so far), else the paper broker's ``pending`` orders."""
    rows: list[dict[str, Any]] = []
    listed = snapshot.get("open_orders")
    book = snapshot.get("orders")
    if isinstance(listed, list):
        for item in listed:
            if isinstance(item, Mapping):
                inner = item.get("order")
                order = inner if isinstance(inner, Mapping) else item
                rows.append(_order_row(order, item.get("filled_qty")))
    elif isinstance(book, Mapping) and book:
        for item in book.values():
            filled = item.get("filled_qty")
            rows.append(_order_row(item.get("order") or {}, None if filled is None else filled))
    else:
        broker = snapshot.get("broker")
        pending = broker.get("pending") if isinstance(broker, Mapping) else None
        for order in pending if isinstance(pending, list) else []:
            rows.append(_order_row(order, None))
    return sorted(rows, key=lambda r: (r["symbol"], r["client_order_id"]))


def _last_bar(snapshot: Mapping[str, Any]) -> str | None:
    opens = snapshot.get("last_open_ms")
    if not isinstance(opens, Mapping) or not opens:
        return None
    return _iso_ms(max(int(v) for v in opens.values()))


def build_status(
    snapshot: Mapping[str, Any],
    *,
    initial_capital_usd: float,
    source: str,
    service: Mapping[str, Any] | None = None,
    saved_at: datetime | None = None,
) -> dict[str, Any]:
    """The status of the process the snapshot describes. ``service`` adds what only a running
    service knows (mode, ticks, readiness, last tick); ``saved_at`` is the state file's time."""
    extra = service or {}
    if "risk_state" not in snapshot:
        raise ControlError("the snapshot has no risk_state: not a Hamilton state")
    try:
        state = RiskState.from_dict(snapshot["risk_state"])
    except (ValueError, TypeError, KeyError) as exc:
        raise ControlError(f"the saved risk state is unusable: {exc}") from None
    positions = _positions(state)
    unrealized = math.fsum(p["unrealized_pnl_usd"] for p in positions)
    equity = state.equity_usd
    total = equity - initial_capital_usd
    realized = snapshot.get("realized_pnl_usd")
    kill_reason = str(snapshot.get("kill_reason") or state.kill_reason or "")
    last_tick = extra.get("last_tick_at") or snapshot.get("last_tick_at")
    return {
        "source": source,
        "mode": extra.get("mode") or snapshot.get("mode"),
        "timeframe": snapshot.get("timeframe"),
        "symbols": len(snapshot.get("symbols") or ()),
        "release_id": snapshot.get("release_id"),
        "risk": {
            "state": state.effective_state.value,
            "loss_state": state.trading_state.value,
            "kill_switch": state.kill_switch,
            "kill_reason": kill_reason if state.kill_switch else "",
            "day": state.day.isoformat(),
            "day_start_equity_usd": state.day_start_equity_usd,
        },
        "pnl": {
            "initial_capital_usd": initial_capital_usd,
            "cash_usd": state.cash_usd,
            "equity_usd": equity,
            "unrealized_usd": unrealized,
            "realized_usd": float(realized) if realized is not None else total - unrealized,
            "total_usd": total,
            "day_usd": equity - state.day_start_equity_usd,
        },
        "positions": positions,
        "open_orders": _open_orders(snapshot),
        "clock_offset_ms": snapshot.get("clock_offset_ms"),
        "last_tick_at": last_tick,
        "last_bar_open": _last_bar(snapshot),
        "state_saved_at": saved_at.isoformat() if saved_at is not None else None,
        "ticks": extra.get("ticks"),
        "ready": extra.get("ready"),
        "state_dir": extra.get("state_dir"),
    }


# --- rendering ----------------------------------------------------------------------------------


def _usd(value: Any) -> str:
    return "-" if value is None else f"{float(value):,.2f}"


def _qty(value: Any) -> str:
    return "-" if value is None else f"{float(value):.8g}"


def _summary(status: Mapping[str, Any]) -> Table:
    risk, pnl = status["risk"], status["pnl"]
    kill = f"ON: {risk['kill_reason'] or '(no reason given)'}" if risk["kill_switch"] else "off"
    offset = status.get("clock_offset_ms")
    table = Table(title=f"Hamilton status (from {status['source']})")
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [
        ("mode", status.get("mode") or "-"),
        ("release", str(status.get("release_id") or "-")),
        ("risk state", str(risk["state"]).upper()),
        ("daily loss state", str(risk["loss_state"]).upper()),
        ("kill switch", kill),
        ("equity (USD)", _usd(pnl["equity_usd"])),
        ("cash (USD)", _usd(pnl["cash_usd"])),
        ("realized PnL (USD)", _usd(pnl["realized_usd"])),
        ("unrealized PnL (USD)", _usd(pnl["unrealized_usd"])),
        ("total PnL (USD)", _usd(pnl["total_usd"])),
        (f"PnL today {risk['day']} (USD)", _usd(pnl["day_usd"])),
        ("exchange clock offset", "-" if offset is None else f"{int(offset)} ms"),
        ("last tick", status.get("last_tick_at") or "-"),
        ("last bar decided (open)", status.get("last_bar_open") or "-"),
    ]
    if status.get("state_saved_at"):
        rows.append(("state saved at", status["state_saved_at"]))
    if status.get("ticks") is not None:
        rows.append(("ticks this run", str(status["ticks"])))
    for what, value in rows:
        table.add_row(what, value)
    return table


def _positions_table(positions: list[Mapping[str, Any]]) -> Table:
    table = Table(title=f"Positions ({len(positions)})")
    for column in ("symbol", "qty", "entry", "mark", "notional (USD)", "unrealized PnL (USD)"):
        table.add_column(column, justify="left" if column == "symbol" else "right")
    for p in positions:
        table.add_row(
            p["symbol"],
            _qty(p["qty"]),
            _qty(p["entry_price"]),
            _qty(p["mark_price"]),
            _usd(p["notional_usd"]),
            _usd(p["unrealized_pnl_usd"]),
        )
    return table


def _orders_table(orders: list[Mapping[str, Any]]) -> Table:
    table = Table(title=f"Open orders ({len(orders)})")
    for column in ("symbol", "side", "qty", "filled", "type", "reduce-only", "client id"):
        table.add_column(column, justify="right" if column in ("qty", "filled") else "left")
    for o in orders:
        kind = o["order_type"] + (f" @ {_qty(o['limit_price'])}" if o.get("limit_price") else "")
        table.add_row(
            o["symbol"],
            o["side"],
            _qty(o["qty"]),
            _qty(o.get("filled_qty")),
            kind,
            "yes" if o["reduce_only"] else "no",
            o["client_order_id"],
        )
    return table


def render_status(status: Mapping[str, Any], console: Console) -> None:
    """Print ``status`` (from :func:`build_status`) as three rich tables."""
    console.print(_summary(status))
    console.print(_positions_table(list(status["positions"])))
    console.print(_orders_table(list(status["open_orders"])))
