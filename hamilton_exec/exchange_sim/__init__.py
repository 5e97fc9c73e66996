"""A local Binance exchange simulator (spot ``/api/v3`` and USD-M ``/fapi`` REST) for tests,
benchmarks and by-hand use: real symbol filters, HMAC signatures and recvWindow checks, a
matching engine over a synthetic book, balances and positions, request weights, and injectable
faults. See ``docs/exchange-simulator.md``.

    with SimulatorServer(symbols=["BTC/USDT"], api_key="K", api_secret="S") as sim:
        client = build_ccxt_client(ExchangeSection(..., base_url=sim.base_url))
        sim.faults.inject("POST /api/v3/order", "accept_then_timeout", delay_s=2.0)
"""

from hamilton_exec.exchange_sim.errors import SimError
from hamilton_exec.exchange_sim.faults import FAULT_KINDS, Fault, FaultSchedule
from hamilton_exec.exchange_sim.market import Filters, SymbolSpec, SyntheticMarket, default_spec
from hamilton_exec.exchange_sim.matching import Engine, EngineConfig, Order, OrderParams
from hamilton_exec.exchange_sim.server import SimulatorServer

__all__ = [
    "FAULT_KINDS",
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
    "default_spec",
]
