"""``python -m trading_core.cli`` is ``coin-engine``."""

from trading_core.cli.app import run

run()
