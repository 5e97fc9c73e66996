"""The Dagster code location: ``dagster dev -m engine_assets.definitions``."""

import dagster as dg

from engine_assets.assets.universe import coin_universe, liquidity_ranking
from engine_assets.resources import BrainLibraryResource, EngineConfigResource, MarketDataResource

_config = EngineConfigResource()

defs = dg.Definitions(
    assets=[coin_universe, liquidity_ranking],
    resources={
        "engine_config": _config,
        "brain": BrainLibraryResource(engine_config=_config),
        "market": MarketDataResource(engine_config=_config),
    },
)
