"""Long multi-coin frames: each coin one contiguous block of rows, located by its offsets.

The compiled kernels (features, regimes) loop over these blocks; the engines count warm-up per
block. One place decides what "contiguous" means and how the offsets are found.
"""

import numpy as np
import numpy.typing as npt
import polars as pl


def is_contiguous(frame: pl.DataFrame, by: str) -> bool:
    """True when every value of ``frame[by]`` occupies one contiguous run of rows."""
    if frame.height == 0:
        return True
    runs: int = frame.select(pl.col(by).rle_id().max()).item()
    return runs + 1 == frame.get_column(by).n_unique()


def block_starts(frame: pl.DataFrame, by: str | None) -> npt.NDArray[np.int64]:
    """First row of each ``by`` block, then the row count (``[0, n]`` without ``by``).

    Raises ValueError naming the fix when a value of ``by`` is split over several blocks."""
    if by is None or frame.height == 0:
        return np.array([0, frame.height], dtype=np.int64)
    if not is_contiguous(frame, by):
        raise ValueError(f"each {by!r} must occupy one contiguous block of rows (sort by it)")
    lengths = frame.select(pl.col(by).rle().struct.field("len")).to_series().to_numpy()
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
