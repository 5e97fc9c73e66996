"""Keep the cyclic garbage collector off the per-bar path.

A served release and the coins' windows are ~0.5 M long-lived objects. Every full collection
scans them all (~150 ms at 400 coins: measured in ``bench/hamilton.py``), and a full
collection lands on some tick: it is what the p99 of a tick shows. Freezing the heap once it
is built (``gc.freeze``, the CPython documentation's advice for long-lived processes) moves
those objects out of the scans; unfreezing first lets the previous release's cycles be
collected when a new one is swapped in.
"""

import gc
from typing import Any

from trading_core.observability.logging import get_logger


def settle_long_lived_heap(reason: str, release_id: int | None) -> int:
    """Collect what is garbage now, then freeze the rest; returns the frozen object count."""
    gc.unfreeze()
    collected = gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    _log().info(
        "heap_settled",
        reason=reason,
        release_id=release_id,
        collected=collected,
        frozen_objects=frozen,
    )
    return frozen


def _log() -> Any:
    return get_logger("hamilton.heap")
