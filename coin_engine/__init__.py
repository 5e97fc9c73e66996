"""The application package: the ``coin-engine`` command line and the demo.

It sits above both halves (engine_assets: the Dagster training DAG; hamilton_exec: the execution
service) and the domain library (trading_core), and is the only package allowed to import all of
them, lazily: ``coin-engine --help`` imports none of them.
"""
