"""Dagster assets of the daily training DAG (thin wrappers over trading_core)."""
