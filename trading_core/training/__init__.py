"""Training: the XGBoost model per coin x regime x timeframe, and its fan-out on Dask."""
