"""Coin blocks of long frames."""

import numpy as np
import polars as pl
import pytest

from trading_core.market.blocks import block_starts, is_contiguous


@pytest.mark.parametrize(
    ("symbols", "expected"),
    [
        ([], [0, 0]),
        (["A"], [0, 1]),
        (["A", "A", "B", "C", "C", "C"], [0, 2, 3, 6]),
    ],
)
def test_block_starts_known_answers(symbols: list[str], expected: list[int]) -> None:
    frame = pl.DataFrame({"symbol": symbols}, schema={"symbol": pl.String})
    assert is_contiguous(frame, "symbol")
    np.testing.assert_array_equal(block_starts(frame, "symbol"), expected)


def test_block_starts_without_by_is_one_block() -> None:
    np.testing.assert_array_equal(block_starts(pl.DataFrame({"x": [1, 2, 3]}), None), [0, 3])


def test_split_block_raises_naming_the_fix() -> None:
    frame = pl.DataFrame({"symbol": ["A", "B", "A"]})
    assert not is_contiguous(frame, "symbol")
    with pytest.raises(ValueError, match="contiguous block of rows"):
        block_starts(frame, "symbol")
