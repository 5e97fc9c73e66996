"""``python -m hamilton_exec.exchange_sim --port 8765 --symbols BTC/USDT,ETH/USDT
--balance USDT=100000 --api-key K --api-secret S [--offset-ms N] [--seed N] [--time-scale X]``:
serve REST and websockets until Ctrl-C.
"""

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from hamilton_exec.exchange_sim.matching import EngineConfig
from hamilton_exec.exchange_sim.server import SimulatorServer
from trading_core.observability.logging import configure_logging


def _balances(items: Sequence[str]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for item in items:
        asset, _, amount = item.partition("=")
        try:
            out[asset.strip().upper()] = Decimal(amount)
        except InvalidOperation:
            raise SystemExit(
                f"--balance {item!r}: expected ASSET=AMOUNT, e.g. USDT=100000"
            ) from None
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hamilton_exec.exchange_sim",
        description="A local Binance simulator (spot /api/v3 and USD-M /fapi REST, websockets).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0: a free port")
    parser.add_argument("--symbols", default="BTC/USDT,ETH/USDT", help="comma separated")
    parser.add_argument(
        "--balance", action="append", default=[], help="spot balance ASSET=AMOUNT (repeatable)"
    )
    parser.add_argument(
        "--futures-balance", action="append", default=[], help="USD-M wallet ASSET=AMOUNT"
    )
    parser.add_argument("--api-key", default="sim-key")
    parser.add_argument("--api-secret", default="sim-secret")
    parser.add_argument("--offset-ms", type=int, default=0, help="server clock - local clock")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--half-spread-bps", type=float, default=1.0)
    parser.add_argument("--level-notional", type=float, default=50_000.0)
    parser.add_argument("--time-scale", type=float, default=1.0, help="server clock speed-up")
    parser.add_argument(
        "--stream-interval-s", type=float, default=1.0, help="forming kline push interval"
    )
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging(level=args.log_level, service="exchange-sim", secrets=[args.api_secret])
    balances = _balances(args.balance) or {"USDT": Decimal(100_000)}
    server = SimulatorServer(
        symbols=[s.strip() for s in args.symbols.split(",") if s.strip()],
        balances=balances,
        futures_balances=_balances(args.futures_balance) or None,
        api_key=args.api_key,
        api_secret=args.api_secret,
        host=args.host,
        port=args.port,
        seed=args.seed,
        clock_offset_ms=args.offset_ms,
        time_scale=args.time_scale,
        stream_interval_s=args.stream_interval_s,
        config=EngineConfig(
            half_spread_bps=args.half_spread_bps, level_notional=args.level_notional
        ),
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    base_url = server.start()
    print(base_url, server.ws_base_url, flush=True)
    try:
        stop.wait()
    finally:
        server.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
