"""The long-lived heap is frozen once built, and a previous release's cycles are still freed."""

import gc
import weakref
from collections.abc import Iterator

import pytest

from hamilton_exec.runtime.heap import settle_long_lived_heap


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


class _Release:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_settling_freezes_the_live_heap() -> None:
    kept = [_Release() for _ in range(1000)]
    frozen = settle_long_lived_heap("test", None)
    assert frozen == gc.get_freeze_count() and frozen >= len(kept)


def test_a_dropped_release_in_the_frozen_heap_is_freed_on_the_next_settle() -> None:
    old = _Release()
    alive = weakref.ref(old)
    settle_long_lived_heap("first release", 1)
    del old
    gc.collect()
    assert alive() is not None  # frozen: invisible to the collector
    settle_long_lived_heap("second release", 2)
    assert alive() is None
