"""One coin x timeframe prepared for training and validation: features, the 22 rule engines'
signals, regimes and the forward-return label, as aligned arrays.

The label is defined in time (``trading_core.features.labels``): a bar whose horizon crosses a
gap in the candles has none, and ``label_end_ms`` records, per bar, the open time of the bar
whose close its label uses, so the walk-forward leakage checks verify the label as defined.

The learned engine's input is exactly ``trading_core.engines.ML_INPUT_COLUMNS`` built by
``ml_input_frame``, the same call Hamilton makes at inference, so training and serving can
never see different columns.
"""

import hashlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from trading_core.config.models import RegimeDetectionSection
from trading_core.engines import (
    CONFIDENCE_COLUMNS,
    ML_INPUT_COLUMNS,
    SIGNAL_COLUMNS,
    EngineContext,
    align_series,
    ml_input_frame,
    run_rule_engines,
)
from trading_core.engines.learned import ML_WARMUP_BARS
from trading_core.features import (
    NO_LABEL_END_MS,
    compute_features,
    forward_return_bps,
    label_end_ms,
    warmup_bars,
)
from trading_core.market.schema import OHLCV_COLUMNS, TIMESTAMP
from trading_core.regime import detect_regimes
from trading_core.regime.detector import regime_warmup_bars
from trading_core.types import timeframe_ms

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CoinFrame:
    """Aligned per-bar arrays of one coin and timeframe (all of length ``n_bars``)."""

    symbol: str
    timeframe: str
    bars: pl.DataFrame  # bars + features + regime column, for the backtest pre-pass
    timestamps_ms: npt.NDArray[np.int64]
    features: npt.NDArray[np.float32]  # ML_INPUT_COLUMNS
    rule_signals: FloatArray  # (n, 22)
    rule_confidences: FloatArray  # (n, 22)
    regimes: npt.NDArray[np.int8]
    label_bps: FloatArray  # NaN where the horizon is not closed yet or crosses a gap
    label_end_ms: npt.NDArray[np.int64]  # open time of the label's end bar; NO_LABEL_END_MS: none
    warm: npt.NDArray[np.bool_]  # past every warm-up: features, engines, regime
    data_hash: str

    @property
    def n_bars(self) -> int:
        return int(self.timestamps_ms.shape[0])

    @property
    def feature_names(self) -> tuple[str, ...]:
        return ML_INPUT_COLUMNS

    def trainable(self, regime_code: int) -> npt.NDArray[np.bool_]:
        """Rows a model of ``regime_code`` may learn from: warm, labelled, in the regime."""
        mask: npt.NDArray[np.bool_] = (
            self.warm & np.isfinite(self.label_bps) & (self.regimes == regime_code)
        )
        return mask


def prepare_coin_frame(
    symbol: str,
    timeframe: str,
    bars: pl.DataFrame,
    *,
    detection: RegimeDetectionSection,
    label_horizon_bars: int,
    btc_bars: pl.DataFrame | None = None,
    funding: pl.DataFrame | None = None,
    ml_scale_bps: float = 50.0,
) -> CoinFrame:
    """Features, rule signals, regimes and labels of validated, sorted ``bars``."""
    if bars.height == 0:
        raise ValueError(f"{symbol} {timeframe}: no bars to prepare")
    feats = compute_features(bars)
    ctx = EngineContext(
        btc_close=None if btc_bars is None else align_series(bars, btc_bars, "close"),
        funding_rate=None
        if funding is None or funding.height == 0
        else np.nan_to_num(align_series(bars, funding, "funding_rate"), nan=0.0),
        ml_scale_bps=ml_scale_bps,
    )
    rules = run_rule_engines(feats, ctx)
    regimes = detect_regimes(feats, detection)
    bar_ms = timeframe_ms(timeframe)
    raw = forward_return_bps(bars, label_horizon_bars, bar_ms=bar_ms).to_numpy().astype(np.float64)
    label = np.where(np.isfinite(raw), raw, np.nan)
    timestamps_ms = bars[TIMESTAMP].dt.epoch("ms").to_numpy().astype(np.int64)
    label_end = label_end_ms(timestamps_ms, label_horizon_bars, bar_ms)
    matrix = ml_input_frame(feats, rules).select(ML_INPUT_COLUMNS).to_numpy()
    warmup = max(warmup_bars(), ML_WARMUP_BARS, regime_warmup_bars(detection))
    warm = np.arange(bars.height) >= warmup
    return CoinFrame(
        symbol=symbol,
        timeframe=timeframe,
        bars=feats.with_columns(pl.Series("regime", regimes)),
        timestamps_ms=timestamps_ms,
        features=np.ascontiguousarray(matrix, dtype=np.float32),
        rule_signals=rules.select(SIGNAL_COLUMNS).to_numpy().astype(np.float64),
        rule_confidences=rules.select(CONFIDENCE_COLUMNS).to_numpy().astype(np.float64),
        regimes=np.asarray(regimes, dtype=np.int8),
        label_bps=label,
        label_end_ms=np.where(np.isfinite(label), label_end, NO_LABEL_END_MS).astype(np.int64),
        warm=warm,
        data_hash=bars_hash(symbol, timeframe, bars),
    )


def bars_hash(symbol: str, timeframe: str, bars: pl.DataFrame) -> str:
    """sha256 of the exact candles a model learns from (stable across library versions)."""
    digest = hashlib.sha256(f"{symbol}|{timeframe}|".encode())
    digest.update(bars[TIMESTAMP].dt.epoch("ms").to_numpy().astype("<i8").tobytes())
    for column in OHLCV_COLUMNS[1:]:
        digest.update(bars[column].to_numpy().astype("<f8").tobytes())
    return digest.hexdigest()
