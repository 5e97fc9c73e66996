"""Consensus of the engines: reliability weights, correlation penalty, regime thresholds."""

from trading_core.consensus.correlation import cluster_divisors
from trading_core.consensus.edge import (
    calibrate_information_coefficient,
    calibrate_information_coefficients_by_regime,
    consensus_expected_return_bps,
)
from trading_core.consensus.reliability import (
    ReliabilityTracker,
    forward_return_sign,
    reliability_series,
)
from trading_core.consensus.vote import (
    ACTION_BY_CODE,
    ConsensusParams,
    ConsensusResult,
    combine_votes,
    engine_votes,
)

__all__ = [
    "ACTION_BY_CODE",
    "ConsensusParams",
    "ConsensusResult",
    "ReliabilityTracker",
    "calibrate_information_coefficient",
    "calibrate_information_coefficients_by_regime",
    "cluster_divisors",
    "combine_votes",
    "consensus_expected_return_bps",
    "engine_votes",
    "forward_return_sign",
    "reliability_series",
]
