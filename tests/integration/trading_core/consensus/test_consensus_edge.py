"""Does the consensus carry an edge after costs? On the synthetic market, walked forward over
the year (purged splits: clusters and the per-regime IC fitted on each training span, applied
to the next test span), for the product's active universe (the ``engine.active_coins`` most
liquid coins by the liquidity ranking two months in, i.e. known before any test bar).

The path is production's: the training DAG's walk-forward evaluation
(``trading_core.training.evaluate``) with the learned engine abstaining: ``prepare_coin_frame``
-> ``engine_votes`` -> ``causal_reliability`` -> per window ``fit_serving_tables`` on its
training bars and ``decision_inputs`` on its test bars -> the windows concatenated
(``concat_inputs``) -> ``run_backtest``.

Statistic: the mean net return per closed trade in bps (after fees, spread, slippage, funding),
pooled over coins, with its t-statistic; consensus against two random-vote controls:

* ``coin_flip``: the same consensus strength, confidence and forecast size with a coin-flip
  direction per bar (trades as often, pays the same costs, no directional information);
* ``shuffled``: every engine's votes shuffled in time before the whole pipeline (the
  calibration sees no predictive power, so the system should barely trade).

Over several markets, not one seed: market seeds 1, 2, 3, 7, 11 (all five seeds ever measured
for this claim, none dropped; ``UNIVERSE_COINS`` 150 as before, the 20 active coins per seed), each
walked once (module-scoped fixtures). Trades of different seeds come from independent markets,
so the per-trade net returns are pooled over seeds and the statistics taken on the pool. The
assertions were fixed before the pooled figures were first computed; one threshold each, no
other variant tried. Measured (strength 1.0; printed with ``pytest -s``):

  seed  consensus trades, bps/trade (t)   coin-flip trades, bps (t)   Welch t
     1        162   +23.4 (+1.53)              198  -27.9 (-2.35)        2.65
     2        177   +12.8 (+0.57)              205  -30.6 (-1.60)        1.47
     3        123   -12.8 (-0.58)              176  -55.1 (-4.11)        1.63
     7        251   +20.4 (+1.71)              304  -37.6 (-3.70)        3.70
    11        261    +9.8 (+0.66)              295  -18.9 (-1.63)        1.52
  pooled      974   +12.5 (+1.66)             1178  -32.7 (-5.58)        4.74

(pooled without seed 7, the seed the former one-seed test used: Welch t 3.5, consensus +9.7 bps
t 1.06). Shuffled votes: 0 trades at every seed. Null market (``no_edge``, same seeds, consensus
and coin-flip only: the shuffled control is not rerun there, it gave 0 trades and costs ~15 s):
consensus 2, 46, 6, 44, 34 trades, pooled 132 trades -71.1 bps (t -1.72); coin-flip pooled 568
trades -38.1 bps (t -5.92); Welch t of consensus vs coin-flip -0.79 (low power: few trades).

What is claimed, and holds:

* the consensus beats coin-flip votes after costs: pooled Welch t > 2 (4.74), and a higher mean
  net return per trade than coin-flip in a majority of seeds (5 of 5); per seed the Welch t
  passes 2 only at seeds 1 and 7, so no single seed carries the claim;
* shuffled votes carry no significant edge (pooled t < 1.645, fewer trades than the consensus);
* on a null market there is no significant profit (pooled consensus t < 1.645) and no
  significant skill over coin-flip (|pooled Welch t| < 2).

What is not supported: "consensus is profitable after costs" as a significant claim. The pooled
mean is positive (+12.5 bps/trade, mean total return per coin +0.39%) but its t is 1.66 < 2, so
that test is an ``xfail(strict=True)`` carrying these figures: the edge shows against random
direction (which pays the same costs), not yet as significant profit net of costs.

Runtime: the file took ~20 s (one seed per market) and takes ~65 s (five seeds, one machine
load), each walk ~4-8 s.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

from trading_core.backtest import BacktestConfig, BacktestInputs, BacktestResult, run_backtest
from trading_core.config.models import EngineConfig, SyntheticMarketSection, WalkForwardSection
from trading_core.consensus import ConsensusParams
from trading_core.costs import CostParams
from trading_core.decision.columns import EngineVotes
from trading_core.decision.inputs import (
    causal_reliability,
    decision_inputs,
    engine_votes,
    fit_serving_tables,
    ml_vote,
)
from trading_core.market.ranking import liquidity_ranking
from trading_core.market.synthetic import SyntheticMarket
from trading_core.regime import RegimeGates
from trading_core.training.dataset import CoinFrame, prepare_coin_frame
from trading_core.training.evaluate import concat_inputs
from trading_core.validation.walk_forward import WalkForwardSplit, purged_walk_forward_splits

pytestmark = pytest.mark.slow

UNIVERSE_COINS = 150
SEEDS = (1, 2, 3, 7, 11)
MIN_POOLED_TRADES = 250  # seed 7 alone gave 251 consensus trades
CONTROL_SEED = 20_260_105
WALK = WalkForwardSection(train_days=60, test_days=25, purge_days=1, embargo_days=0)
EVERYTHING = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
CONFIG = EngineConfig()


@dataclass(frozen=True)
class TradeStats:
    """Per-trade net returns (bps) and per-coin total returns of one strategy, for one seed or
    pooled over seeds (trades of different seeds come from independent markets)."""

    returns_bps: npt.NDArray[np.float64] = field(repr=False)
    total_returns: npt.NDArray[np.float64] = field(repr=False)

    @classmethod
    def of(cls, results: list[BacktestResult]) -> "TradeStats":
        returns = np.concatenate([np.asarray(r.trades.return_bps, np.float64) for r in results])
        totals = np.array([r.metrics.total_return for r in results], dtype=np.float64)
        return cls(returns, totals)

    @classmethod
    def pooled(cls, parts: Iterable["TradeStats"]) -> "TradeStats":
        parts = list(parts)
        return cls(
            np.concatenate([p.returns_bps for p in parts]),
            np.concatenate([p.total_returns for p in parts]),
        )

    @property
    def n_trades(self) -> int:
        return int(self.returns_bps.size)

    @property
    def mean_net_bps(self) -> float:
        return float(self.returns_bps.mean()) if self.n_trades else 0.0

    @property
    def t_stat(self) -> float:
        """One-sample t of the mean net return per trade against zero."""
        if self.n_trades < 2 or not np.std(self.returns_bps) > 0:
            return 0.0
        return float(stats.ttest_1samp(self.returns_bps, 0.0).statistic)

    @property
    def total_return(self) -> float:
        """Mean total return per coin backtest."""
        return float(self.total_returns.mean()) if self.total_returns.size else 0.0


Walk = dict[str, TradeStats]


def _shuffled(votes: EngineVotes, rng: np.random.Generator) -> EngineVotes:
    order = np.argsort(rng.uniform(size=votes.signals.shape), axis=0)
    return replace(
        votes,
        signals=np.take_along_axis(votes.signals, order, axis=0),
        confidences=np.take_along_axis(votes.confidences, order, axis=0),
    )


def _coin_flip(inputs: BacktestInputs, rng: np.random.Generator) -> BacktestInputs:
    flip = rng.choice([-1, 1], size=inputs.n_bars)
    return replace(
        inputs,
        action=(inputs.action * flip).astype(np.int8),
        score=inputs.score * flip,
        expected_return_bps=inputs.expected_return_bps * flip,
    )


def _walked_inputs(
    frame: CoinFrame, votes: EngineVotes, splits: list[WalkForwardSplit]
) -> BacktestInputs:
    """The walk-forward evaluation's inputs: tables fitted per window on its training bars,
    decision inputs of its test bars, the windows concatenated (positions carry across)."""
    params = ConsensusParams.from_config(CONFIG.consensus)
    horizon = CONFIG.training.model.label_horizon_bars
    reliability = causal_reliability(frame, votes, params, horizon)
    parts = []
    for split in splits:
        if split.test_idx.size == 0:
            continue
        tables = fit_serving_tables(frame, votes, reliability, split.train_idx, params, horizon)
        inputs, _ = decision_inputs(
            frame, votes, reliability, split.test_idx, tables, params=params,
            cost_params=CostParams.from_config(CONFIG.cost_model), horizon_bars=horizon,
        )  # fmt: skip
        parts.append(inputs)
    return concat_inputs(parts)


def _walk(mode: str, seed: int, *, shuffle: bool = True) -> Walk:
    market = SyntheticMarket(
        SyntheticMarketSection(n_coins=UNIVERSE_COINS, days=365, seed=seed, mode=mode)
    )
    first_bar = datetime.combine(market.section.end_date, datetime.min.time(), UTC)
    snapshot = market.universe_snapshot(first_bar - timedelta(days=365 - 60))
    active = liquidity_ranking(snapshot, CONFIG.coin_selection).symbols
    active = active[: CONFIG.engine.active_coins]
    btc = market.fetch_ohlcv("BTC/USDT", "1h", start=EVERYTHING[0], end=EVERYTHING[1])
    gates = RegimeGates.from_config(CONFIG.regime_gates)
    backtest = BacktestConfig.from_engine_config(CONFIG, timeframe="1h")
    horizon = CONFIG.training.model.label_horizon_bars
    rng = np.random.default_rng(CONTROL_SEED)
    names = ("consensus", "coin_flip", "shuffled") if shuffle else ("consensus", "coin_flip")
    results: dict[str, list[BacktestResult]] = {name: [] for name in names}
    for symbol in active:
        bars = market.fetch_ohlcv(symbol, "1h", start=EVERYTHING[0], end=EVERYTHING[1])
        funding = market.funding_rates(symbol, start=EVERYTHING[0], end=EVERYTHING[1])
        frame = prepare_coin_frame(
            symbol, "1h", bars, detection=CONFIG.regime_gates.detection,
            label_horizon_bars=horizon, btc_bars=btc,
            funding=funding if funding.height else None,
            ml_scale_bps=CONFIG.consensus.ml_scale_bps,
        )  # fmt: skip
        abstain = ml_vote(np.full(frame.n_bars, np.nan), CONFIG.consensus.ml_scale_bps)
        votes = engine_votes(frame, *abstain, gates)
        splits = purged_walk_forward_splits(
            frame.timestamps_ms, WALK, bar_ms=3_600_000, label_horizon_bars=horizon
        )
        walked = {"consensus": _walked_inputs(frame, votes, splits)}
        if shuffle:
            walked["shuffled"] = _walked_inputs(frame, _shuffled(votes, rng), splits)
        walked["coin_flip"] = _coin_flip(walked["consensus"], rng)
        for name, inputs in walked.items():
            results[name].append(run_backtest(inputs, backtest))
    return {name: TradeStats.of(r) for name, r in results.items()}


def _welch_t(a: TradeStats, b: TradeStats) -> float:
    """Welch's t of a's mean net return per trade over b's."""
    return float(stats.ttest_ind(a.returns_bps, b.returns_bps, equal_var=False).statistic)


def _pool(walks: dict[int, Walk]) -> Walk:
    names = next(iter(walks.values())).keys()
    return {name: TradeStats.pooled(w[name] for w in walks.values()) for name in names}


def _report(mode: str, walks: dict[int, Walk]) -> None:
    rows = [(f"seed {seed:2d}", w) for seed, w in walks.items()] + [("pooled", _pool(walks))]
    for label, figures in rows:
        for name, s in figures.items():
            print(
                f"[{mode} {label:7s}] {name:9s} trades={s.n_trades:5d} "
                f"mean_net={s.mean_net_bps:8.2f} bps t={s.t_stat:6.2f} "
                f"mean_total_return={s.total_return:+.4f}"
            )
        welch = _welch_t(figures["consensus"], figures["coin_flip"])
        print(f"[{mode} {label:7s}] consensus vs coin_flip Welch t={welch:6.2f}")


@pytest.fixture(scope="module")
def structured() -> dict[int, Walk]:
    walks = {seed: _walk("structured", seed) for seed in SEEDS}
    _report("structured", walks)
    return walks


@pytest.fixture(scope="module")
def null() -> dict[int, Walk]:
    walks = {seed: _walk("no_edge", seed, shuffle=False) for seed in SEEDS}
    _report("null", walks)
    return walks


def test_structured_consensus_beats_coin_flip_votes_after_costs(
    structured: dict[int, Walk],
) -> None:
    pooled = _pool(structured)
    consensus, control = pooled["consensus"], pooled["coin_flip"]
    assert consensus.n_trades >= MIN_POOLED_TRADES and control.n_trades >= MIN_POOLED_TRADES
    assert _welch_t(consensus, control) > 2.0
    wins = sum(
        w["consensus"].mean_net_bps > w["coin_flip"].mean_net_bps for w in structured.values()
    )
    assert wins > len(SEEDS) / 2


@pytest.mark.xfail(
    strict=True,
    reason=(
        "not supported by the data: pooled over market seeds 1, 2, 3, 7, 11 the consensus makes "
        "+12.5 bps/trade after costs over 974 trades (mean total return +0.39%/coin) but t=1.66 "
        "< 2; per seed +23.4, +12.8, -12.8, +20.4, +9.8 bps (t 1.53, 0.57, -0.58, 1.71, 0.66)"
    ),
)
def test_structured_consensus_is_profitable_after_costs(structured: dict[int, Walk]) -> None:
    """Pooled mean net return per trade positive with t > 2, and positive mean total return."""
    consensus = _pool(structured)["consensus"]
    assert consensus.mean_net_bps > 0.0
    assert consensus.t_stat > 2.0
    assert consensus.total_return > 0.0


def test_shuffled_votes_give_no_significant_edge(structured: dict[int, Walk]) -> None:
    pooled = _pool(structured)
    assert pooled["shuffled"].n_trades < pooled["consensus"].n_trades
    assert pooled["shuffled"].t_stat < stats.norm.ppf(0.95)


def test_null_market_shows_no_significant_edge(null: dict[int, Walk]) -> None:
    pooled = _pool(null)
    assert pooled["consensus"].t_stat < stats.norm.ppf(0.95)
    assert abs(_welch_t(pooled["consensus"], pooled["coin_flip"])) < 2.0
