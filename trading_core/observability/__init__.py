"""Logging setup and the metric names both halves share."""

from trading_core.observability.logging import configure_logging, get_logger

__all__ = ["configure_logging", "get_logger"]
