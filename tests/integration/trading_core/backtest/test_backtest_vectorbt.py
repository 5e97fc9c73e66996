"""Cross-check: the backtest's fills, replayed through vectorbt's Portfolio.from_orders with the
same sizes, reference prices, slippage and fees on real Binance BTC/USDT 1h candles, give the
same equity curve and final value (to floating-point tolerance)."""

from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import pytest

from trading_core.backtest import (
    BacktestConfig,
    BacktestInputs,
    BacktestResult,
    build_inputs,
    run_backtest,
)
from trading_core.config.models import CostModelSection, EngineConfig, VenueFees
from trading_core.consensus import ConsensusResult
from trading_core.costs import CostParams
from trading_core.features import compute_features

vbt = pytest.importorskip("vectorbt")

BTC_1H = Path("/work/shared/data/real/ohlcv/BTC_USDT-1h.parquet")
pytestmark = pytest.mark.skipif(not BTC_1H.exists(), reason=f"{BTC_1H} not present")


def _cost_model(instrument: str) -> CostModelSection:
    # perps without funding: vectorbt has no funding, everything else is identical
    fees = {"binance": VenueFees(maker_bps=2.0, taker_bps=4.0, funding_bps_per_8h=0.0)}
    return CostModelSection(instrument=instrument, spread_source="candles", fee_schedule=fees)


def _inputs(cost_model: CostModelSection) -> BacktestInputs:
    bars = pl.read_parquet(BTC_1H)
    features = compute_features(bars)
    momentum = features["momentum_z_24"].fill_null(np.nan).to_numpy()
    known = np.isfinite(momentum) & features["atr_14_pct"].is_not_null().to_numpy()
    score = np.where(known, np.tanh(np.nan_to_num(momentum) / 2.0), 0.0)
    action = np.where(np.abs(score) > 0.3, np.sign(score), 0).astype(np.int8)
    n = bars.height
    consensus = ConsensusResult(
        score=score,
        agreement=np.ones(n),
        confidence=0.5 + 0.5 * np.abs(score),
        action=action,
        weights=np.zeros((n, 1)),
    )
    close = bars["close"].to_numpy()
    return build_inputs(
        bars,
        symbol="BTC/USDT",
        consensus=consensus,
        regimes=np.zeros(n, dtype=np.int8),
        expected_return_bps=150.0 * score,
        atr=features["atr_14_pct"].fill_null(np.nan).to_numpy() * close,
        volatility_bps=features["realized_vol_24"].fill_null(np.nan).to_numpy() * 1e4,
        cost_params=CostParams.from_config(cost_model),
        candle_spread_bps=features["spread_cs_bps"].fill_null(np.nan).to_numpy(),
        data_valid=known,
    )


def _vectorbt_portfolio(
    inputs: BacktestInputs, result: BacktestResult, fill_at: str, fee_bps: float
) -> Any:
    reference = inputs.open if fill_at == "next_open" else inputs.close
    index = pl.Series(inputs.timestamps_ms).cast(pl.Datetime("ms", "UTC")).to_pandas()
    filled = result.fill_qty != 0.0
    return vbt.Portfolio.from_orders(
        close=inputs.close,
        size=np.where(filled, result.fill_qty, np.nan),
        price=reference,
        fees=fee_bps * 1e-4,
        slippage=np.where(filled, result.fill_price_adjust_bps * 1e-4, 0.0),
        init_cash=100_000.0,
        direction="both",
        freq="1h",
        wrapper_kwargs={"index": index},
    )


@pytest.mark.parametrize("instrument", ["spot", "perp"])
@pytest.mark.parametrize("fill_at", ["next_open", "close"])
def test_equity_matches_vectorbt_from_orders(
    instrument: str, fill_at: Literal["next_open", "close"]
) -> None:
    config = EngineConfig().model_copy(update={"cost_model": _cost_model(instrument)})
    backtest_config = replace(
        BacktestConfig.from_engine_config(config, timeframe="1h"),
        fill_at=fill_at,
        initial_capital_usd=100_000.0,
    )
    inputs = _inputs(config.cost_model)
    result = run_backtest(inputs, backtest_config)
    assert result.metrics.n_orders > 50
    if instrument == "perp":
        assert (result.fill_qty < 0).any() and (result.position < 0).any()
    portfolio = _vectorbt_portfolio(inputs, result, fill_at, backtest_config.decision.costs.fee_bps)
    assert portfolio.orders.count() == result.metrics.n_orders
    np.testing.assert_allclose(portfolio.value().to_numpy(), result.equity, rtol=1e-10)
    np.testing.assert_allclose(portfolio.cash().to_numpy(), result.cash, rtol=1e-10)
    assert portfolio.final_value() == pytest.approx(result.metrics.final_equity_usd, rel=1e-10)
