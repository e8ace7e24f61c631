"""``gc_paused``: run a block with the cyclic garbage collector paused.

Reading a large CSV or writing a JSON line per group makes millions of small lists, tuples and
dicts and no reference cycles. Each 700 new containers start a collection, and the collections of
the older generations walk the whole growing heap: on a 60,000-row table they took a third of the
reading time and a quarter of the JSON writing, and found nothing. Reference counting still frees
everything as usual; only the search for cycles waits until the block ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic collector for the block (nested blocks are fine; it resumes as it was)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


__all__ = ["gc_paused"]
