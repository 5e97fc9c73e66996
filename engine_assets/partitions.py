"""Partition design (see README "Partitions"):

* ``daily_partitions``: one key per UTC day for the whole daily chain. The 02:00 UTC schedule
  runs ONE Dagster run for the day that fans out every coin x regime x timeframe on Dask. Over ten
  years that is ~3,650 keys per asset, far inside Dagster's ~100k guidance.
* ``coin_partitions``: dynamic, one key per coin ("BTC"), added from the liquidity ranking. Used by
  ``coin_retrain`` to rerun one coin (or, with run config, one coin x regime x timeframe) without
  touching the day's run. Bounded by the size of the universe (~450), not by time.

No multi-partition (date x coin) is used: 400 coins x 365 days passes 100k keys within a year.
"""

import dagster as dg

PARTITIONS_START_DATE = "2020-01-01"

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=PARTITIONS_START_DATE, timezone="UTC", fmt="%Y-%m-%d"
)
coin_partitions = dg.DynamicPartitionsDefinition(name="coins")

# Backfills of a date range run as a single run per asset (each day is cheap to launch once).
single_run_backfill = dg.BackfillPolicy.single_run()


def partition_days(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> list[str]:
    """The daily partitions of this run: one normally, every day of the range in a single-run
    backfill (``BackfillPolicy.single_run``). Assets process them in order."""
    return list(context.partition_keys)
