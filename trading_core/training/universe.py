"""Which coins the day trains: the top of the stored liquidity ranking."""

import polars as pl

from trading_core.errors import InsufficientDataError


def active_symbols(ranking: pl.DataFrame, n: int, *, quote: str) -> list[str]:
    """The ``n`` best-ranked symbols quoted in ``quote`` (rank 1 first)."""
    if n < 1:
        raise ValueError(f"n={n} must be >= 1 (engine.active_coins)")
    if ranking.height == 0:
        raise InsufficientDataError(
            "the liquidity ranking of this day is empty: materialize liquidity_ranking first, "
            "or loosen coin_selection filters"
        )
    quoted = ranking.filter(pl.col("symbol").str.ends_with(f"/{quote}")).sort("rank")
    return quoted["symbol"].head(n).to_list()
