"""Daily liquidity ranking of the tradable universe (the seed's "Coin Selection & Liquidity
Filter").

Filters run in this fixed order, each counting the coins it removes (a coin is counted once, by
the first filter it fails; a missing value fails its filter):

1. ``quote``: the pair's quote currency is ``quote`` (e.g. USDT);
2. ``min_age_days``: listed at least this many days;
3. ``min_daily_volume_usd``: trailing 24h quote volume;
4. ``max_spread_bps``: spread at most this (an unknown spread is an unknown cost: rejected);
5. ``max_coins``: after ranking, only the best ``max_coins`` are kept.

``ranking_method``:

- ``liquidity_score`` (default), higher is better::

      score = log10(daily_volume_usd) - 2 * log10(1 + spread_bps) - 0.5 * max(0, 1 - age_days / 365)

  ten times the volume is worth one point; doubling a 10 bps spread costs about 0.55 of a
  point; a coin younger than a year loses up to half a point (young listings are erratic);
- ``volume``: daily_volume_usd, higher is better;
- ``spread``: spread_bps, tighter is better.

Ties are broken by symbol (alphabetical), so the ranking is deterministic.

The snapshot's own data quality travels with the ranking: ``rejected_candles`` (candles dropped
by :func:`~trading_core.market.validation.clean_ohlcv`, per reason label) and ``skipped_files``
(corrupt candle files left out of the snapshot).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

import polars as pl

from trading_core.config.models import CoinSelectionSection
from trading_core.errors import ConfigError, DataValidationError
from trading_core.market.quality import DataQuality
from trading_core.market.schema import UNIVERSE_SCHEMA

FILTER_ORDER: Final = (
    "quote",
    "min_age_days",
    "min_daily_volume_usd",
    "max_spread_bps",
    "max_coins",
)
SPREAD_WEIGHT: Final = 2.0
YOUTH_PENALTY: Final = 0.5
YOUTH_HORIZON_DAYS: Final = 365.0


@dataclass(frozen=True, slots=True)
class LiquidityRanking:
    """The ranked coins (``rank`` 1 = best), how many coins each filter removed, and the
    snapshot's candles rejected per reason and corrupt files skipped."""

    ranked: pl.DataFrame
    removed_by_filter: Mapping[str, int]
    method: str
    rejected_candles: Mapping[str, int] = field(default_factory=dict)
    skipped_files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("removed_by_filter", "rejected_candles"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        ranks = self.ranked["rank"].to_list()
        if ranks != list(range(1, len(ranks) + 1)):
            raise ValueError("ranked frame must carry ranks 1..n in order")

    @property
    def symbols(self) -> list[str]:
        return list(self.ranked["symbol"])

    def top(self, n: int) -> pl.DataFrame:
        """The ``n`` best coins."""
        if n < 0:
            raise ValueError(f"n={n} must be >= 0")
        return self.ranked.head(n)

    def to_markdown(self, n: int = 20) -> str:
        """A Markdown table of the ``n`` best coins and a line of filter counts."""
        header = "| rank | symbol | score | volume 24h (USD) | spread (bps) | age (days) |"
        lines = [header, "|---:|---|---:|---:|---:|---:|"]
        for row in self.top(n).iter_rows(named=True):
            lines.append(
                f"| {row['rank']} | {row['symbol']} | {row['liquidity_score']:.3f} | "
                f"{row['daily_volume_usd']:,.0f} | {row['spread_bps']:.2f} | {row['age_days']} |"
            )
        removed = ", ".join(f"{k}: {v}" for k, v in self.removed_by_filter.items())
        lines.append("")
        lines.append(
            f"{self.ranked.height} coins kept ({self.method}); removed by filter: {removed}"
        )
        if self.rejected_candles:
            rejected = ", ".join(f"{k}: {v}" for k, v in self.rejected_candles.items())
            lines.append("")
            lines.append(f"candles rejected: {rejected}")
        if self.skipped_files:
            lines.append("")
            lines.append(f"corrupt files skipped: {', '.join(self.skipped_files)}")
        return "\n".join(lines)


def liquidity_score_expr() -> pl.Expr:
    """The documented ``liquidity_score`` as a polars expression over a universe snapshot."""
    volume = pl.col("daily_volume_usd").clip(lower_bound=1.0).log10()
    spread = (1.0 + pl.col("spread_bps").clip(lower_bound=0.0)).log10()
    youth = (1.0 - pl.col("age_days").cast(pl.Float64) / YOUTH_HORIZON_DAYS).clip(lower_bound=0.0)
    return volume - SPREAD_WEIGHT * spread - YOUTH_PENALTY * youth


def liquidity_ranking(
    snapshot: pl.DataFrame,
    selection: CoinSelectionSection,
    *,
    quote: str = "USDT",
    quality: DataQuality | None = None,
) -> LiquidityRanking:
    """Filter and rank a universe snapshot (see the module docstring for order and formula);
    ``quality`` (what the snapshot's reads left out) is carried into the result."""
    missing = [c for c in UNIVERSE_SCHEMA if c not in snapshot.columns]
    if missing:
        raise DataValidationError(
            f"universe snapshot lacks columns {missing}; required: {list(UNIVERSE_SCHEMA)}"
        )
    if snapshot["symbol"].is_duplicated().any():
        dupes = sorted(set(snapshot.filter(pl.col("symbol").is_duplicated())["symbol"]))
        raise DataValidationError(f"universe snapshot lists symbols more than once: {dupes[:10]}")
    removed: dict[str, int] = {}
    kept = snapshot.with_columns(pl.col(pl.Float64).fill_nan(None))
    for name, keep in _filters(selection, quote):
        passing = kept.filter(keep.fill_null(value=False))
        removed[name] = kept.height - passing.height
        kept = passing
    scored = kept.with_columns(liquidity_score=liquidity_score_expr())
    ordered = scored.sort(*_sort_keys(selection.ranking_method))
    capped = ordered.head(selection.max_coins)
    removed["max_coins"] = ordered.height - capped.height
    ranked = capped.with_row_index("rank", offset=1).with_columns(pl.col("rank").cast(pl.Int64))
    report = quality or DataQuality()
    return LiquidityRanking(
        ranked,
        removed,
        selection.ranking_method,
        rejected_candles=report.rejected_candles,
        skipped_files=report.corrupt_files,
    )


def _filters(selection: CoinSelectionSection, quote: str) -> list[tuple[str, pl.Expr]]:
    return [
        ("quote", pl.col("quote") == quote),
        ("min_age_days", pl.col("age_days") >= selection.min_age_days),
        ("min_daily_volume_usd", pl.col("daily_volume_usd") >= selection.min_daily_volume_usd),
        ("max_spread_bps", pl.col("spread_bps") <= selection.max_spread_bps),
    ]


def _sort_keys(method: str) -> tuple[pl.Expr, ...]:
    if method == "liquidity_score":
        return (pl.col("liquidity_score").neg(), pl.col("symbol"))
    if method == "volume":
        return (pl.col("daily_volume_usd").neg(), pl.col("symbol"))
    if method == "spread":
        return (pl.col("spread_bps"), pl.col("symbol"))
    raise ConfigError(f"ranking_method {method!r}; allowed: liquidity_score, volume, spread")
