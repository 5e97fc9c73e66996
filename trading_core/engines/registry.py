"""The registry of exactly 23 engines in a fixed order: 22 rule engines, then ``ml_brain``."""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from trading_core.engines.base import EngineSpec
from trading_core.engines.learned import ML_BRAIN
from trading_core.engines.rules import RULE_ENGINES

N_ENGINES: Final = 23
SEED_ENGINE_NAMES: Final[tuple[str, ...]] = (
    "trend_v1",
    "trend_v2",
    "breakout",
    "momentum",
    "mean_reversion",
    "range_trading",
    "support_resistance",
    "scalping",
    "volatility",
    "liquidity",
)

ENGINE_REGISTRY: Final[Mapping[str, EngineSpec]] = MappingProxyType(
    {spec.name: spec for spec in (*RULE_ENGINES, ML_BRAIN)}
)
ENGINE_NAMES: Final[tuple[str, ...]] = tuple(ENGINE_REGISTRY)

if len(ENGINE_NAMES) != N_ENGINES or ENGINE_NAMES[: len(SEED_ENGINE_NAMES)] != SEED_ENGINE_NAMES:
    raise RuntimeError(f"engine registry must hold 23 engines, seed names first: {ENGINE_NAMES}")


def engine_table_markdown() -> str:
    """The registry as a Markdown table: name | family | regimes | description."""
    lines = ["| name | family | regimes | description |", "|---|---|---|---|"]
    for spec in ENGINE_REGISTRY.values():
        regimes = ", ".join(r.value for r in spec.regimes)
        lines.append(f"| `{spec.name}` | {spec.family} | {regimes} | {spec.description} |")
    return "\n".join(lines) + "\n"
