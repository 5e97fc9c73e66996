"""The reliability-weighted vote of the engines, vectorized over bars.

On each bar only engines enabled in the bar's regime (hard gates) with confidence > 0 vote.
Effective weight ``w = reliability x soft-gate multiplier x confidence / cluster divisor``.

* score = sum(w x signal) / sum(w), in [-1, 1]
* agreement = share of sum(w) on the side of the score (signals of that sign)
* confidence = sum(w on that side) / sum(w without the confidence factor): the share of the
  available reliability-weighted voting power that confidently backs the winning side
* action = buy if score >= adaptive_threshold[regime] and agreement >= min_agreement, sell
  symmetrically, else hold; ILLIQUID always holds

No voter (or a zero score) gives score, agreement and confidence 0 and a hold.
"""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trading_core.config.models import ConsensusSection
from trading_core.consensus.reliability import N_REGIMES
from trading_core.events import EngineVote
from trading_core.types import REGIME_CODES, REGIMES, Action, Regime

FloatArray = npt.NDArray[np.float64]
ACTION_BUY, ACTION_SELL, ACTION_HOLD = 1, -1, 0
ACTION_BY_CODE: dict[int, Action] = {1: Action.BUY, -1: Action.SELL, 0: Action.HOLD}


@dataclass(frozen=True, slots=True)
class ConsensusParams:
    """Thresholds of the vote: ``thresholds`` by regime code, ``min_agreement`` in [0, 1]."""

    thresholds: tuple[float, ...]
    min_agreement: float
    correlation_threshold: float
    decay: float
    prior: float

    def __post_init__(self) -> None:
        if len(self.thresholds) != N_REGIMES or not all(0 <= t <= 1 for t in self.thresholds):
            raise ValueError(f"thresholds {self.thresholds!r}: need {N_REGIMES} values in [0, 1]")
        if not 0.0 <= self.min_agreement <= 1.0:
            raise ValueError(f"min_agreement={self.min_agreement!r} must be in [0, 1]")

    @classmethod
    def from_config(cls, section: ConsensusSection) -> "ConsensusParams":
        by_name = section.adaptive_thresholds.model_dump()
        return cls(
            thresholds=tuple(float(by_name[r.value]) for r in REGIMES),
            min_agreement=section.min_agreement_threshold,
            correlation_threshold=section.correlation_penalty_threshold,
            decay=section.reliability_decay_factor,
            prior=section.reliability_prior,
        )


@dataclass(frozen=True)
class ConsensusResult:
    """Per-bar consensus (read-only arrays); ``action`` codes are +1 buy, -1 sell, 0 hold."""

    score: FloatArray
    agreement: FloatArray
    confidence: FloatArray
    action: npt.NDArray[np.int8]
    weights: FloatArray

    def __post_init__(self) -> None:
        n = self.score.shape[0]
        for name in ("score", "agreement", "confidence", "action"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have shape ({n},)")
        if self.weights.ndim != 2 or self.weights.shape[0] != n:
            raise ValueError(f"weights must be ({n}, n_engines); got {self.weights.shape}")
        for name in ("score", "agreement", "confidence", "action", "weights"):
            getattr(self, name).flags.writeable = False

    def action_at(self, bar: int) -> Action:
        return ACTION_BY_CODE[int(self.action[bar])]


def _validated(
    signals: npt.ArrayLike,
    confidences: npt.ArrayLike,
    regimes: npt.ArrayLike,
    reliability: npt.ArrayLike,
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int64], FloatArray]:
    sig = np.asarray(signals, dtype=np.float64)
    conf = np.asarray(confidences, dtype=np.float64)
    rel = np.asarray(reliability, dtype=np.float64)
    codes = np.asarray(regimes).astype(np.int64)
    if sig.ndim != 2 or conf.shape != sig.shape or rel.shape != sig.shape:
        raise ValueError(
            f"signals, confidences and reliability must share one (n_bars, n_engines) shape; "
            f"got {sig.shape}, {conf.shape}, {rel.shape}"
        )
    if codes.shape != (sig.shape[0],) or (
        codes.size and not 0 <= codes.min() <= codes.max() < N_REGIMES
    ):
        raise ValueError(f"regimes must be ({sig.shape[0]},) codes in 0..{N_REGIMES - 1}")
    if not (np.all(np.abs(sig) <= 1.0) and np.all((conf >= 0.0) & (conf <= 1.0))):
        raise ValueError("signals must be finite in [-1, 1] and confidences in [0, 1]")
    if not np.all((rel >= 0.0) & np.isfinite(rel)):
        raise ValueError("reliability must be finite and >= 0")
    return sig, conf, codes, rel


def _per_regime(array: npt.ArrayLike, n_engines: int, name: str) -> FloatArray:
    values = np.asarray(array, dtype=np.float64)
    if values.shape != (N_REGIMES, n_engines) or not np.all(values >= 0.0):
        raise ValueError(f"{name} must be ({N_REGIMES}, {n_engines}) of values >= 0")
    return values


def combine_votes(
    signals: npt.ArrayLike,
    confidences: npt.ArrayLike,
    regimes: npt.ArrayLike,
    reliability: npt.ArrayLike,
    *,
    enabled: npt.ArrayLike,
    weight_multipliers: npt.ArrayLike,
    cluster_divisors: npt.ArrayLike,
    params: ConsensusParams,
) -> ConsensusResult:
    """The consensus of every bar (see the module docstring).

    ``enabled`` (n_regimes, n_engines) bool hard gates, ``weight_multipliers`` the soft gates and
    ``cluster_divisors`` (from :func:`cluster_divisors`) are indexed by regime code.
    """
    sig, conf, codes, rel = _validated(signals, confidences, regimes, reliability)
    n_engines = sig.shape[1]
    gates = np.asarray(enabled, dtype=bool)
    if gates.shape != (N_REGIMES, n_engines):
        raise ValueError(f"enabled must be ({N_REGIMES}, {n_engines}); got {gates.shape}")
    multipliers = _per_regime(weight_multipliers, n_engines, "weight_multipliers")
    divisors = _per_regime(cluster_divisors, n_engines, "cluster_divisors")
    if not np.all(divisors[gates] >= 1.0):
        raise ValueError("cluster_divisors of enabled engines must be >= 1")
    voting = gates[codes] & (conf > 0.0)
    base = np.where(voting, rel * multipliers[codes] / divisors[codes], 0.0)
    weights = base * conf
    total = weights.sum(axis=1)
    safe_total = np.where(total > 0.0, total, 1.0)
    score = np.where(total > 0.0, (weights * sig).sum(axis=1) / safe_total, 0.0)
    score = np.clip(score, -1.0, 1.0)
    side = np.sign(score)
    winning = (np.sign(sig) == side[:, None]) & (side[:, None] != 0.0)
    backing = np.where(winning, weights, 0.0).sum(axis=1)
    agreement = np.where(side != 0.0, backing / safe_total, 0.0)
    power = base.sum(axis=1)
    confidence = np.where(side != 0.0, backing / np.where(power > 0.0, power, 1.0), 0.0)
    return ConsensusResult(
        score=score,
        agreement=np.clip(agreement, 0.0, 1.0),
        confidence=np.clip(confidence, 0.0, 1.0),
        action=_actions(score, agreement, codes, params),
        weights=weights,
    )


def _actions(
    score: FloatArray, agreement: FloatArray, codes: npt.NDArray[np.int64], params: ConsensusParams
) -> npt.NDArray[np.int8]:
    threshold = np.asarray(params.thresholds)[codes]
    agreed = (agreement >= params.min_agreement) & (codes != REGIME_CODES[Regime.ILLIQUID])
    action = np.zeros(score.shape, dtype=np.int8)
    action[agreed & (score >= threshold)] = ACTION_BUY
    action[agreed & (score <= -threshold)] = ACTION_SELL
    return action


def engine_votes(
    names: tuple[str, ...],
    signals_row: npt.ArrayLike,
    confidences_row: npt.ArrayLike,
    weights_row: npt.ArrayLike,
    enabled_row: npt.ArrayLike,
) -> tuple[EngineVote, ...]:
    """The :class:`EngineVote` records of one bar (for the DecisionEvent)."""
    sig = np.asarray(signals_row, dtype=np.float64)
    conf = np.asarray(confidences_row, dtype=np.float64)
    weight = np.asarray(weights_row, dtype=np.float64)
    gate = np.asarray(enabled_row, dtype=bool)
    if not len(names) == sig.size == conf.size == weight.size == gate.size:
        raise ValueError(f"{len(names)} names but rows of {sig.size}/{conf.size}/{weight.size}")
    return tuple(
        EngineVote(n, float(s), float(c), float(w), bool(g))
        for n, s, c, w, g in zip(names, sig, conf, weight, gate, strict=True)
    )
