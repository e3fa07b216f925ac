"""Background loops of `mydata demo` (the mail sender, the consent sweeper, the ledger sequencer).

Each loop takes a ``stop`` event and returns once it is set; production runs the same loops as
commands of their own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def start_daemon(name: str, loop: Callable[..., object], *args: Any, **kwargs: Any) -> threading.Event:
    """Run ``loop(*args, stop=event, **kwargs)`` in a daemon thread called *name*; return the event that stops it."""
    stop = threading.Event()
    threading.Thread(target=loop, args=args, kwargs={**kwargs, "stop": stop}, name=name, daemon=True).start()
    return stop
