"""freeze_startup_heap: what the long-running commands call after startup."""

from __future__ import annotations

import gc

from credit_commons.core.heap import freeze_startup_heap


def test_the_startup_heap_is_frozen_and_still_freed_by_reference_counting() -> None:
    gc.unfreeze()
    try:
        frozen = freeze_startup_heap()
        assert frozen == gc.get_freeze_count() > 1000
        # A frozen object is out of the collector's sight, not kept alive.
        alive = [object() for _ in range(3)]
        gc.freeze()
        kept = gc.get_freeze_count()
        del alive
        assert gc.get_freeze_count() < kept
    finally:
        gc.unfreeze()  # give the test process its ordinary collector back
