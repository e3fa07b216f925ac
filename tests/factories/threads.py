"""Running pieces of work in threads that start together (races, concurrency tests)."""

from __future__ import annotations

import threading
from collections.abc import Callable


def at_once(*works: Callable[[], object]) -> list[BaseException]:
    """Run each of *works* in a thread of its own, all released together; return what they raised."""
    start = threading.Barrier(len(works))
    errors: list[BaseException] = []

    def run(work: Callable[[], object]) -> None:
        try:
            start.wait()
            work()
        except BaseException as exc:  # reported to the caller, which asserts on them
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(work,)) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
