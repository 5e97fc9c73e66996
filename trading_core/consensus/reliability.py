"""Reliability weights: an exponentially decayed hit rate per engine, per coin and regime.

An engine "votes" on a bar when its signal is non-zero; it hits when the sign of its signal
equals the sign of the forward return over the label horizon. Per regime, every resolved bar
decays that regime's evidence by ``decay`` (exponential forgetting, as in an EWMA) and adds the
bar's votes. The estimate is shrunk towards ``prior`` by ``prior_weight`` pseudo-votes that do
not decay, so old or thin evidence falls back to the prior (a Beta-prior hit rate):

    reliability = (prior x prior_weight + decayed_hits) / (prior_weight + decayed_votes)

Causality: the outcome of bar t is known only when the horizon has closed, at bar t + horizon;
the reliability used at bar t includes exactly the bars t' <= t - horizon.
"""

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from trading_core.types import REGIMES

N_REGIMES = len(REGIMES)
FloatArray = npt.NDArray[np.float64]


def forward_return_sign(close: npt.ArrayLike, horizon_bars: int) -> FloatArray:
    """``sign(close[t + h] - close[t])`` per bar; NaN for the last ``h`` bars (not known yet)."""
    prices = np.asarray(close, dtype=np.float64)
    if prices.ndim != 1 or horizon_bars < 1:
        raise ValueError(
            f"close must be 1-D (got shape {prices.shape}) and horizon_bars >= 1 "
            f"(got {horizon_bars})"
        )
    out = np.full(prices.shape, np.nan)
    if prices.size > horizon_bars:
        out[:-horizon_bars] = np.sign(prices[horizon_bars:] - prices[:-horizon_bars])
    return out


def _votes_and_hits(signals: FloatArray, outcome: FloatArray) -> tuple[FloatArray, FloatArray]:
    votes = (signals != 0.0).astype(np.float64)
    hits = (np.sign(signals) == outcome[:, None]).astype(np.float64) * votes
    return votes, hits


@dataclass(frozen=True)
class ReliabilityTracker:
    """Decayed evidence per (regime code, engine); :meth:`update` returns a new tracker."""

    decayed_hits: FloatArray
    decayed_votes: FloatArray
    decay: float
    prior: float
    prior_weight: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.decay < 1.0:
            raise ValueError(f"decay={self.decay!r} must be in (0, 1)")
        if not 0.0 <= self.prior <= 1.0:
            raise ValueError(f"prior={self.prior!r} must be in [0, 1]")
        if not (math.isfinite(self.prior_weight) and self.prior_weight > 0.0):
            raise ValueError(f"prior_weight={self.prior_weight!r} must be > 0")
        for name in ("decayed_hits", "decayed_votes"):
            array = np.array(getattr(self, name), dtype=np.float64)
            if array.ndim != 2 or array.shape[0] != N_REGIMES:
                raise ValueError(f"{name} has shape {array.shape}; expected ({N_REGIMES}, n)")
            array.flags.writeable = False
            object.__setattr__(self, name, array)
        if self.decayed_hits.shape != self.decayed_votes.shape:
            raise ValueError("decayed_hits and decayed_votes must have one shape")

    @classmethod
    def initial(
        cls, n_engines: int, *, decay: float, prior: float, prior_weight: float = 1.0
    ) -> "ReliabilityTracker":
        zeros = np.zeros((N_REGIMES, n_engines))
        return cls(zeros, zeros.copy(), decay, prior, prior_weight)

    @classmethod
    def from_history(
        cls,
        signals: npt.ArrayLike,
        forward_return_sign: npt.ArrayLike,
        regimes: npt.ArrayLike,
        *,
        decay: float,
        prior: float,
        horizon_bars: int,
        prior_weight: float = 1.0,
    ) -> "ReliabilityTracker":
        """The tracker after every bar whose outcome is known at the last bar (t <= n-1-h):
        what the reliability of the bar after the history starts from (e.g. a restarted
        Hamilton warming up on its history, then calling :meth:`update` per new bar)."""
        sig = np.asarray(signals, dtype=np.float64)
        outcome = np.asarray(forward_return_sign, dtype=np.float64).copy()
        codes = np.asarray(regimes).astype(np.int64)
        _validate_series_inputs(sig, outcome, codes, horizon_bars)
        outcome[max(sig.shape[0] - horizon_bars, 0) :] = np.nan  # not closed yet
        start = cls.initial(sig.shape[1], decay=decay, prior=prior, prior_weight=prior_weight)
        resolved = np.isfinite(outcome) & (outcome != 0.0)
        hits, votes = start.decayed_hits.copy(), start.decayed_votes.copy()
        for regime in range(N_REGIMES):
            events = np.flatnonzero(resolved & (codes == regime))
            vote, hit = _votes_and_hits(sig[events], np.sign(outcome[events]))
            hits[regime] = _decayed_cumsum(hit, decay, hits[regime])[-1]
            votes[regime] = _decayed_cumsum(vote, decay, votes[regime])[-1]
        return cls(hits, votes, decay, prior, prior_weight)

    @property
    def n_engines(self) -> int:
        return int(self.decayed_hits.shape[1])

    def reliability(self, regime: int) -> FloatArray:
        """Hit-rate estimate of every engine in ``regime`` (a code of ``REGIME_CODES``)."""
        numerator = self.prior * self.prior_weight + self.decayed_hits[regime]
        result: FloatArray = numerator / (self.prior_weight + self.decayed_votes[regime])
        return result

    def update(
        self, regime: int, signals: npt.ArrayLike, outcome_sign: float
    ) -> "ReliabilityTracker":
        """Add one resolved bar; an unknown (NaN) or flat (0) outcome changes nothing."""
        row = np.asarray(signals, dtype=np.float64)
        if row.shape != (self.n_engines,):
            raise ValueError(f"signals has shape {row.shape}; expected ({self.n_engines},)")
        if not math.isfinite(outcome_sign) or outcome_sign == 0.0:
            return self
        votes, hits = _votes_and_hits(row[None, :], np.array([np.sign(outcome_sign)]))
        new_hits = self.decayed_hits.copy()
        new_votes = self.decayed_votes.copy()
        new_hits[regime] = self.decay * new_hits[regime] + hits[0]
        new_votes[regime] = self.decay * new_votes[regime] + votes[0]
        return ReliabilityTracker(new_hits, new_votes, self.decay, self.prior, self.prior_weight)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decayed_hits": self.decayed_hits.tolist(),
            "decayed_votes": self.decayed_votes.tolist(),
            "decay": self.decay,
            "prior": self.prior,
            "prior_weight": self.prior_weight,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ReliabilityTracker":
        return cls(
            np.asarray(data["decayed_hits"], dtype=np.float64),
            np.asarray(data["decayed_votes"], dtype=np.float64),
            float(data["decay"]),
            float(data["prior"]),
            float(data["prior_weight"]),
        )


def _validate_series_inputs(
    signals: FloatArray, outcome: FloatArray, regimes: npt.NDArray[np.int64], horizon_bars: int
) -> None:
    if signals.ndim != 2 or outcome.shape != (signals.shape[0],):
        raise ValueError(
            f"signals must be (n_bars, n_engines) and forward_return_sign (n_bars,); got "
            f"{signals.shape} and {outcome.shape}"
        )
    if regimes.shape != outcome.shape:
        raise ValueError(f"regimes has shape {regimes.shape}; expected {outcome.shape}")
    if regimes.size and (regimes.min() < 0 or regimes.max() >= N_REGIMES):
        raise ValueError(f"regime codes must be in 0..{N_REGIMES - 1}")
    if not np.all(np.isfinite(signals)):
        raise ValueError("signals must be finite (engines emit 0 while warming up)")
    if horizon_bars < 1:
        raise ValueError(f"horizon_bars={horizon_bars!r} must be >= 1")


def reliability_series(
    signals: npt.ArrayLike,
    forward_return_sign: npt.ArrayLike,
    regimes: npt.ArrayLike,
    *,
    decay: float,
    prior: float,
    horizon_bars: int,
    prior_weight: float = 1.0,
    initial: ReliabilityTracker | None = None,
) -> FloatArray:
    """Causal reliability (n_bars, n_engines) of each engine in the regime of each bar.

    Row t equals stepping a :class:`ReliabilityTracker` through the bars t' <= t - horizon in
    order (vectorized per regime with an IIR filter). ``initial`` carries earlier evidence and
    then supplies ``decay``, ``prior`` and ``prior_weight``.
    """
    sig = np.asarray(signals, dtype=np.float64)
    outcome = np.asarray(forward_return_sign, dtype=np.float64)
    codes = np.asarray(regimes).astype(np.int64)
    _validate_series_inputs(sig, outcome, codes, horizon_bars)
    start = initial or ReliabilityTracker.initial(
        sig.shape[1], decay=decay, prior=prior, prior_weight=prior_weight
    )
    if start.n_engines != sig.shape[1]:
        raise ValueError(f"initial tracker has {start.n_engines} engines; signals {sig.shape[1]}")
    n_bars = sig.shape[0]
    out = np.empty_like(sig)
    resolved = np.isfinite(outcome) & (outcome != 0.0)
    known_until = np.arange(n_bars) - horizon_bars
    for regime in range(N_REGIMES):
        bars_here = np.flatnonzero(codes == regime)
        if bars_here.size == 0:
            continue
        events = np.flatnonzero(resolved & (codes == regime))
        votes, hits = _votes_and_hits(sig[events], np.sign(outcome[events]))
        hit_sum = _decayed_cumsum(hits, start.decay, start.decayed_hits[regime])
        vote_sum = _decayed_cumsum(votes, start.decay, start.decayed_votes[regime])
        numerator = hit_sum + start.prior * start.prior_weight
        denominator = vote_sum + start.prior_weight
        n_known = np.searchsorted(events, known_until[bars_here], side="right")
        out[bars_here] = numerator[n_known] / denominator[n_known]
    return out


def _decayed_cumsum(values: FloatArray, decay: float, initial: FloatArray) -> FloatArray:
    """Rows ``y[0] = initial``, ``y[k] = decay * y[k-1] + values[k-1]`` (an IIR filter)."""
    if values.shape[0] == 0:
        return initial[None, :].copy()
    # imported here: scipy.signal costs ~0.3 s beyond scipy.stats on 2 cores, and every
    # importer of trading_core.consensus (the Dagster code location) would pay it
    from scipy.signal import lfilter

    filtered, _ = lfilter([1.0], [1.0, -decay], values, axis=0, zi=decay * initial[None, :])
    return np.vstack([initial[None, :], filtered])
