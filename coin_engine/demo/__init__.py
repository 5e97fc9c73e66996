"""``coin-engine demo``: the embedded default end to end. :mod:`~coin_engine.demo.dag` runs the
daily DAG in-process, :mod:`~coin_engine.demo.shadow` the challengers' shadow loop, and
:mod:`~coin_engine.demo.command` is the command."""
