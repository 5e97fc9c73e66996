"""The ``coin-engine`` command line (typer + rich).

:mod:`coin_engine.cli.app` holds the root app; every command group is named in its table and
imported only when the command line names it (``--help`` imports none). The domain groups
(config, data, brain, events) and ``engine`` live here, ``demo`` in :mod:`coin_engine.demo`;
``hamilton`` stays with its half (:mod:`hamilton_exec.cli`).
"""
