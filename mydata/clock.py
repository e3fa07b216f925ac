"""Time, behind one seam so that tests can move it (codes expire in 60 s, PAR requests in 90 s)."""

from __future__ import annotations

import datetime as dt

from flask import Flask, current_app


class Clock:
    """The real clock: timezone-aware UTC."""

    def now(self) -> dt.datetime:
        """Return the current time in UTC."""
        return dt.datetime.now(dt.UTC)

    def timestamp(self) -> int:
        """Return the current time as whole seconds since the epoch."""
        return int(self.now().timestamp())


class FrozenClock(Clock):
    """A clock that stands still until told to move (tests and benchmarks)."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime.now(dt.UTC)

    def now(self) -> dt.datetime:
        """Return the frozen time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self._now += dt.timedelta(seconds=seconds)


def init_app(app: Flask, clock: Clock | None = None) -> None:
    """Install the application's clock."""
    app.extensions["mydata.clock"] = clock or Clock()


def clock() -> Clock:
    """Return the current application's clock."""
    return current_app.extensions["mydata.clock"]  # type: ignore[no-any-return]


def clock_of(app: Flask) -> Clock:
    """Return *app*'s clock, outside any application context."""
    return app.extensions["mydata.clock"]  # type: ignore[no-any-return]
