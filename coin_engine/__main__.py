"""``python -m coin_engine`` is ``coin-engine``."""

from coin_engine.cli.app import run

run()
