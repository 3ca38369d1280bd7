"""Calls released together in threads, for the race scripts that a test runs in a subprocess
(tests/accounts/quota_race.py, tests/liveness/idempotency_race.py) after django.setup()."""

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def at_once(call: Callable[[], T], workers: int) -> tuple[list[T], list[str]]:
    """``call`` in ``workers`` threads that a barrier releases together: what each returned,
    and the repr of what any raised (reported, not swallowed: the tests assert there are none).
    Each thread closes its database connections as it ends."""
    from django.db import connections

    barrier = threading.Barrier(workers)
    results: list[T] = []
    errors: list[str] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(call())
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors
