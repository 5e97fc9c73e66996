"""Daily universe snapshots kept beside the candle store
(``{root}/_universe/{YYYY-MM-DD}.parquet``), so the ranking of any day can be recomputed from
what the venue looked like that day. Beside each, ``{YYYY-MM-DD}.quality.json``: what the
snapshot's candle reads left out (candles rejected per reason, corrupt files skipped), which the
ranking reports in its metadata. ``root`` is the candle store's root: a local folder, or the
:class:`~trading_core.storage.StorageLocation` of a remote store (one PUT/GET per file there)."""

import io
from datetime import date
from pathlib import Path

import polars as pl

from trading_core.errors import DataSourceError
from trading_core.market.quality import DataQuality
from trading_core.storage import StorageLocation

UNIVERSE_DIR = "_universe"
Root = Path | StorageLocation


def universe_path(root: Path, day: date) -> Path:
    return Path(root) / UNIVERSE_DIR / f"{day.isoformat()}.parquet"


def _remote(root: Root, name: str) -> StorageLocation | None:
    return (
        root.join(UNIVERSE_DIR, name)
        if isinstance(root, StorageLocation) and not root.is_local
        else None
    )


def save_universe_snapshot(root: Root, day: date, snapshot: pl.DataFrame) -> Path | str:
    """Write (replace) the day's snapshot atomically."""
    remote = _remote(root, f"{day.isoformat()}.parquet")
    if remote is not None:
        buffer = io.BytesIO()
        snapshot.write_parquet(buffer)
        remote.put(buffer.getvalue())
        return remote.url
    path = universe_path(_local(root), day)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    snapshot.write_parquet(tmp)
    tmp.replace(path)
    return path


def load_universe_snapshot(root: Root, day: date) -> pl.DataFrame:
    remote = _remote(root, f"{day.isoformat()}.parquet")
    if remote is not None:
        data = remote.fetch()
        if data is None:
            raise _no_snapshot(day, remote.url)
        return pl.read_parquet(io.BytesIO(data))
    path = universe_path(_local(root), day)
    if not path.is_file():
        raise _no_snapshot(day, path)
    return pl.read_parquet(path)


def _no_snapshot(day: date, where: Path | str) -> DataSourceError:
    return DataSourceError(
        f"no universe snapshot for {day} at {where}; materialize coin_universe for that day first"
    )


def quality_path(root: Path, day: date) -> Path:
    return Path(root) / UNIVERSE_DIR / f"{day.isoformat()}.quality.json"


def save_snapshot_quality(root: Root, day: date, quality: DataQuality) -> Path | str:
    """Write (replace) what the day's snapshot left out (rejected candles, corrupt files)."""
    remote = _remote(root, f"{day.isoformat()}.quality.json")
    if remote is not None:
        remote.put(quality.to_json().encode("utf-8"))
        return remote.url
    path = quality_path(_local(root), day)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(quality.to_json(), encoding="utf-8")
    tmp.replace(path)
    return path


def load_snapshot_quality(root: Root, day: date) -> DataQuality:
    """The day's snapshot quality; empty where none was saved (snapshots of older runs)."""
    remote = _remote(root, f"{day.isoformat()}.quality.json")
    if remote is not None:
        data = remote.fetch()
        return DataQuality() if data is None else DataQuality.from_json(data.decode("utf-8"))
    path = quality_path(_local(root), day)
    if not path.is_file():
        return DataQuality()
    return DataQuality.from_json(path.read_text(encoding="utf-8"))


def _local(root: Root) -> Path:
    return root.local_path() if isinstance(root, StorageLocation) else Path(root)
