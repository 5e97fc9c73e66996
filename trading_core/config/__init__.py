"""Validated configuration: frozen pydantic models loaded once and passed in."""

from trading_core.config.loader import (
    ENV_PREFIX,
    config_as_dict,
    default_config_paths,
    load_config,
    mask_dsn,
    secret_values,
)
from trading_core.config.models import (
    CoinSelectionSection,
    ConsensusSection,
    CostModelSection,
    EngineConfig,
    RegimeGatesSection,
    RiskPreset,
    RiskSection,
    ShadowTestingSection,
    WalkForwardSection,
)

__all__ = [
    "ENV_PREFIX",
    "CoinSelectionSection",
    "ConsensusSection",
    "CostModelSection",
    "EngineConfig",
    "RegimeGatesSection",
    "RiskPreset",
    "RiskSection",
    "ShadowTestingSection",
    "WalkForwardSection",
    "config_as_dict",
    "default_config_paths",
    "load_config",
    "mask_dsn",
    "secret_values",
]
