"""The training LABEL: the forward log return. Non-causal by design; never a feature.

``forward_return_bps(bars, h)[t] = 1e4 * ln(close[t + h] / close[t])``: it looks h bars into the
future, which is exactly what a label must do and what a feature must never do. Walk-forward
validation purges/embargoes around it (trading_core.validation); nothing in
``trading_core.features.core`` imports this module.
"""

import polars as pl

from trading_core.errors import DataValidationError


def forward_return_bps(
    bars: pl.DataFrame, horizon_bars: int, *, by: str | None = None
) -> pl.Series:
    """Log return from close[t] to close[t + horizon_bars] in bps; null for the last h bars
    (of each ``by`` group)."""
    if isinstance(horizon_bars, bool) or not isinstance(horizon_bars, int) or horizon_bars < 1:
        raise ValueError(f"horizon_bars {horizon_bars!r} must be an integer >= 1")
    if "close" not in bars.columns or (by is not None and by not in bars.columns):
        raise DataValidationError(f"bars need 'close'{' and ' + repr(by) if by else ''} columns")
    log_close = pl.col("close").cast(pl.Float64).log()
    expr = (log_close.shift(-horizon_bars) - log_close) * 10_000.0
    if by is not None:
        expr = expr.over(by)
    return bars.select(expr.alias(f"forward_return_{horizon_bars}_bps")).to_series()
