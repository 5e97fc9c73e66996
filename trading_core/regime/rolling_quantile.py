"""polars' exact rolling linear quantile as a numba kernel: one sort per coin, then O(1) per bar.

polars' ``rolling_quantile(q, "linear", window)`` is ``p * (upper - lower) + lower`` with
``lower``, ``upper`` the order statistics at ``floor`` and ``ceil`` of ``(window - 1) * q`` in
the sorted window (polars' total order: NaN above every number) and ``p`` the fractional part.
Only those two values matter, so any exact selection reproduces it bit for bit. Why this one:

* a sorted window buffer costs two binary searches and a ~window/3-element move per bar, 4x
  polars at ``window = 720``;
* instead each coin's values are ranked once by an LSD radix sort on order-preserving integer
  keys (~3x numpy's comparison argsort at 10^4 values; O(n) whatever the data), the window is a
  bitmap over those ranks, and a pointer sits on the lower order statistic with the count of
  window ranks below it. A bar adds one rank and drops one, so the pointer moves by at most a
  couple of set bits, each found with one count-trailing/leading-zeros per 64 ranks.
"""

import math

import numba
import numpy as np
import numpy.typing as npt

# numba's own wrappers of LLVM's ctlz/cttz (what its int.bit_length uses)
from numba.cpython.unsafe.numbers import leading_zeros, trailing_zeros

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
Words = npt.NDArray[np.uint64]

_ALL_BITS = np.uint64(0xFFFFFFFFFFFFFFFF)
_SIGN_BIT = np.uint64(1 << 63)
# 6 passes of 11 bits cover a 64-bit key with 2048-bucket histograms that stay in L1.
_RADIX_BITS = 11
_RADIX_PASSES = 6
_RADIX_BUCKETS = 1 << _RADIX_BITS
_RADIX_MASK = np.uint64(_RADIX_BUCKETS - 1)


@numba.njit(cache=True, error_model="numpy", inline="always")
def _next_set(words: Words, rank: int) -> int:
    """Smallest set bit above ``rank`` (-1: none)."""
    i = (rank + 1) >> 6
    if i >= words.shape[0]:
        return -1
    word = words[i] & (_ALL_BITS << np.uint64((rank + 1) & 63))
    while word == np.uint64(0):
        i += 1
        if i == words.shape[0]:
            return -1
        word = words[i]
    # numba intrinsics (LLVM cttz/ctlz) take their typing context implicitly
    return i * 64 + int(trailing_zeros(word))  # type: ignore[call-arg]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _prev_set(words: Words, rank: int) -> int:
    """Largest set bit below ``rank`` (-1: none)."""
    if rank <= 0:
        return -1
    i = (rank - 1) >> 6
    word = words[i] & (_ALL_BITS >> np.uint64(63 - ((rank - 1) & 63)))
    while word == np.uint64(0):
        i -= 1
        if i < 0:
            return -1
        word = words[i]
    return i * 64 + 63 - int(leading_zeros(word))  # type: ignore[call-arg]


@numba.njit(cache=True, error_model="numpy")
def sort_order(values: FloatArray) -> IntArray:
    """Stable ascending argsort in polars' total order (NaN last, -0.0 equal to 0.0): an LSD
    radix sort on order-preserving integer keys, ~3x numpy's comparison sort at 10^4 values."""
    n = values.shape[0]
    bits = values.view(np.uint64)
    keys = np.empty(n, dtype=np.uint64)
    counts = np.zeros((_RADIX_PASSES, _RADIX_BUCKETS), dtype=np.int64)
    for i in range(n):
        if math.isnan(values[i]):
            key = _ALL_BITS
        elif values[i] == 0.0:
            key = _SIGN_BIT
        else:
            # flip negatives whole and set the sign bit of positives: unsigned order = value order
            key = ~bits[i] if bits[i] & _SIGN_BIT else bits[i] | _SIGN_BIT
        keys[i] = key
        for p in range(_RADIX_PASSES):
            counts[p, (key >> np.uint64(_RADIX_BITS * p)) & _RADIX_MASK] += 1
    order = np.arange(n)
    keys_to, order_to = np.empty(n, dtype=np.uint64), np.empty(n, dtype=np.int64)
    for p in range(_RADIX_PASSES):
        count = counts[p]
        if count.max() == n:
            continue  # every key has the same digit here
        total = 0
        for d in range(_RADIX_BUCKETS):
            count[d], total = total, total + count[d]
        shift = np.uint64(_RADIX_BITS * p)
        for i in range(n):
            d = (keys[i] >> shift) & _RADIX_MASK
            keys_to[count[d]], order_to[count[d]] = keys[i], order[i]
            count[d] += 1
        keys, keys_to = keys_to, keys
        order, order_to = order_to, order
    return order


@numba.njit(cache=True, error_model="numpy", inline="always")
def _set_bit(words: Words, rank: int, on: bool) -> None:
    bit = np.uint64(1) << np.uint64(rank & 63)
    words[rank >> 6] = words[rank >> 6] | bit if on else words[rank >> 6] & ~bit


@numba.njit(cache=True, error_model="numpy", inline="always")
def _walk_to(words: Words, lower: int, below: int, k: int) -> tuple[int, int]:
    """Move the pointer (``lower``, ``below``) to the k-th smallest set rank, from the smallest
    if it is not pinned (``lower < 0``)."""
    if lower < 0:
        lower, below = _next_set(words, -1), 0
    while below > k:
        lower, below = _prev_set(words, lower), below - 1
    while below < k:
        lower, below = _next_set(words, lower), below + 1
    return lower, below


@numba.njit(cache=True, error_model="numpy")
def _block_quantile(
    values: FloatArray,
    valid: BoolArray,
    q: float,
    window: int,
    out: FloatArray,
    out_valid: BoolArray,
) -> None:
    n = values.shape[0]
    order = sort_order(values)
    rank, ranked = np.empty(n, dtype=np.int64), np.empty(n)
    for r in range(n):
        rank[order[r]] = r
        ranked[r] = values[order[r]]
    # The window is a bitmap over the ranks; ``lower`` is the rank of its k-th smallest value
    # and ``below`` counts its ranks under ``lower`` (``lower < 0``: not pinned since the last
    # invalid window).
    words = np.zeros((n + 63) // 64, dtype=np.uint64)
    position = (window - 1) * q
    k, top = math.floor(position), math.ceil(position)
    lower, below, nulls = -1, 0, 0
    for t in range(n):
        if valid[t]:
            _set_bit(words, rank[t], True)
            below += lower >= 0 and rank[t] < lower
        else:
            nulls += 1
        gone = t - window
        if gone >= 0 and valid[gone]:
            _set_bit(words, rank[gone], False)
            if rank[gone] < lower:
                below -= 1
            elif rank[gone] == lower:
                lower = _next_set(words, lower)
                if lower < 0:
                    lower, below = _prev_set(words, rank[gone]), below - 1
        elif gone >= 0:
            nulls -= 1
        out_valid[t] = gone >= -1 and nulls == 0
        if not out_valid[t]:
            lower, out[t] = -1, np.nan
            continue
        lower, below = _walk_to(words, lower, below, k)
        a = ranked[lower]
        out[t] = a if k == top else (position - k) * (ranked[_next_set(words, lower)] - a) + a


@numba.njit(cache=True, error_model="numpy")
def rolling_linear_quantile(
    values: FloatArray,
    valid: BoolArray,
    block_starts: IntArray,
    q: float,
    window: int,
    out: FloatArray,
    out_valid: BoolArray,
) -> None:
    """polars' ``rolling_quantile(q, "linear", window, min_samples=window)`` per block, exact;
    invalid unless the block's trailing ``window`` rows are all valid."""
    for b in range(block_starts.shape[0] - 1):
        lo, hi = block_starts[b], block_starts[b + 1]
        _block_quantile(values[lo:hi], valid[lo:hi], q, window, out[lo:hi], out_valid[lo:hi])
