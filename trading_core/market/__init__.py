"""Market data: the OHLCV schema and validator, the sources behind one protocol (synthetic,
parquet, ccxt), resampling, the local store and its fetcher, and the liquidity ranking.

Import from the modules (``trading_core.market.synthetic`` ...): this package imports nothing
itself, so using the synthetic market never loads ccxt.
"""
