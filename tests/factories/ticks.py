"""A monotonic clock that tests move by hand (for caches and pools that time themselves)."""

from __future__ import annotations


class Ticks:
    """Stands in for ``time.monotonic``: call it for the time, add to ``now`` to let time pass."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        """Return the current time."""
        return self.now
