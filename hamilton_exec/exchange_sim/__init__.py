"""A local Binance exchange simulator (spot ``/api/v3`` and USD-M ``/fapi`` REST, and Binance's
websocket streams: klines, bookTicker, diff depth, user data) for tests, benchmarks and by-hand
use: real symbol filters, HMAC signatures and recvWindow checks, a matching engine over a
synthetic book, balances and positions, request weights, stream limits, and injectable faults
(REST and websocket). See ``docs/exchange-simulator.md``.

    with SimulatorServer(symbols=["BTC/USDT"], api_key="K", api_secret="S") as sim:
        client = build_ccxt_client(ExchangeSection(..., base_url=sim.base_url))
        sim.faults.inject("POST /api/v3/order", "accept_then_timeout", delay_s=2.0)
"""

from hamilton_exec.exchange_sim.errors import SimError
from hamilton_exec.exchange_sim.faults import FAULT_KINDS, Fault, FaultSchedule
from hamilton_exec.exchange_sim.market import Filters, SymbolSpec, SyntheticMarket, default_spec
from hamilton_exec.exchange_sim.matching import Engine, EngineConfig, Order, OrderParams
from hamilton_exec.exchange_sim.server import SimulatorServer
from hamilton_exec.exchange_sim.ws_faults import WS_FAULT_KINDS, WsFault, WsFaultSchedule
from hamilton_exec.exchange_sim.ws_server import WsLimits

__all__ = [
    "FAULT_KINDS",
    "WS_FAULT_KINDS",
    "Engine",
    "EngineConfig",
    "Fault",
    "FaultSchedule",
    "Filters",
    "Order",
    "OrderParams",
    "SimError",
    "SimulatorServer",
    "SymbolSpec",
    "SyntheticMarket",
    "WsFault",
    "WsFaultSchedule",
    "WsLimits",
    "default_spec",
]
