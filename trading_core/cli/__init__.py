"""The ``coin-engine`` command line (typer + rich).

trading_core owns the root app and the domain commands (config, data, brain, events). The two
halves plug their own command groups in through the ``coin_engine.cli`` entry-point group
(``hamilton`` from hamilton_exec, ``demo``/``engine`` from engine_assets), so trading_core never
imports them.
"""

from trading_core.cli.app import app

__all__ = ["app"]
