"""Daily universe snapshots kept beside the candle store
(``{root}/_universe/{YYYY-MM-DD}.parquet``), so the ranking of any day can be recomputed from
what the venue looked like that day. Beside each, ``{YYYY-MM-DD}.quality.json``: what the
snapshot's candle reads left out (candles rejected per reason, corrupt files skipped), which the
ranking reports in its metadata."""

from datetime import date
from pathlib import Path

import polars as pl

from trading_core.errors import DataSourceError
from trading_core.market.quality import DataQuality

UNIVERSE_DIR = "_universe"


def universe_path(root: Path, day: date) -> Path:
    return Path(root) / UNIVERSE_DIR / f"{day.isoformat()}.parquet"


def save_universe_snapshot(root: Path, day: date, snapshot: pl.DataFrame) -> Path:
    """Write (replace) the day's snapshot atomically."""
    path = universe_path(root, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    snapshot.write_parquet(tmp)
    tmp.replace(path)
    return path


def load_universe_snapshot(root: Path, day: date) -> pl.DataFrame:
    path = universe_path(root, day)
    if not path.is_file():
        raise DataSourceError(
            f"no universe snapshot for {day} at {path}; "
            "materialize coin_universe for that day first"
        )
    return pl.read_parquet(path)


def quality_path(root: Path, day: date) -> Path:
    return Path(root) / UNIVERSE_DIR / f"{day.isoformat()}.quality.json"


def save_snapshot_quality(root: Path, day: date, quality: DataQuality) -> Path:
    """Write (replace) what the day's snapshot left out (rejected candles, corrupt files)."""
    path = quality_path(root, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(quality.to_json(), encoding="utf-8")
    tmp.replace(path)
    return path


def load_snapshot_quality(root: Path, day: date) -> DataQuality:
    """The day's snapshot quality; empty where none was saved (snapshots of older runs)."""
    path = quality_path(root, day)
    if not path.is_file():
        return DataQuality()
    return DataQuality.from_json(path.read_text(encoding="utf-8"))
