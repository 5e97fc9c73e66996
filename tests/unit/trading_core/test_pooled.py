"""Arrow-pool-backed numpy work arrays."""

import gc

import numpy as np
import polars as pl
import pytest

from trading_core.pooled import pooled_empty


@pytest.mark.parametrize(
    ("shape", "fortran"), [((5,), False), ((3, 4), False), ((3, 4), True), ((0, 44), True)]
)
def test_pooled_empty_has_shape_order_and_is_writable(
    shape: tuple[int, ...], fortran: bool
) -> None:
    a = pooled_empty(shape, fortran=fortran)
    assert a.shape == shape and a.dtype == np.float64 and a.flags.writeable
    assert a.flags.f_contiguous if fortran else a.flags.c_contiguous
    a[...] = 7.0
    assert np.all(a == 7.0)


def test_zero_copy_series_keeps_pooled_memory_alive() -> None:
    a = pooled_empty((1_000, 3), fortran=True)
    a[:, 1] = np.arange(1_000.0)
    series = pl.Series("x", a[:, 1], nan_to_null=True)
    del a
    gc.collect()
    pooled_empty((1_000, 3), fortran=True)[...] = -1.0  # reuse of freed memory would show
    assert series.to_list() == list(np.arange(1_000.0))


@pytest.mark.parametrize("shape", [(-1,), (2, 1.5)])
def test_pooled_empty_bad_shape_raises(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="non-negative integers"):
        pooled_empty(shape)
