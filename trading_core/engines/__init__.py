"""The 23 signal engines: a fixed-order registry of named, vectorised engines.

Each engine maps bars with features (trading_core.features.compute_features) and an
EngineContext to a signal in [-1, 1] and a confidence in [0, 1] per bar; zero in warm-up.
"""

from trading_core.engines.base import (
    EngineContext,
    EngineMatrix,
    EngineSignal,
    EngineSpec,
    MlPredictor,
)
from trading_core.engines.learned import ML_INPUT_COLUMNS, ml_input_frame
from trading_core.engines.registry import (
    ENGINE_NAMES,
    ENGINE_REGISTRY,
    N_ENGINES,
    SEED_ENGINE_NAMES,
    engine_table_markdown,
)
from trading_core.engines.rules import (
    CONFIDENCE_COLUMNS,
    RULE_ENGINE_NAMES,
    SIGNAL_COLUMNS,
    run_rule_engines,
)
from trading_core.engines.runner import align_series, run_engines

__all__ = [
    "CONFIDENCE_COLUMNS",
    "ENGINE_NAMES",
    "ENGINE_REGISTRY",
    "ML_INPUT_COLUMNS",
    "N_ENGINES",
    "RULE_ENGINE_NAMES",
    "SEED_ENGINE_NAMES",
    "SIGNAL_COLUMNS",
    "EngineContext",
    "EngineMatrix",
    "EngineSignal",
    "EngineSpec",
    "MlPredictor",
    "align_series",
    "engine_table_markdown",
    "ml_input_frame",
    "run_engines",
    "run_rule_engines",
]
