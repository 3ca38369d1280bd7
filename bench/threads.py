"""Client threads that a benchmark or a test runs beside a server until told to stop."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Self


class Threads:
    """The threads ``spawn`` adds, started on entering the ``with`` block; on leaving it,
    ``stopping`` is set and each is joined (their loops end once they see it)."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def spawn(self, target: Callable[..., object], *args: object) -> None:
        self.threads.append(threading.Thread(target=target, args=args))

    def __enter__(self) -> Self:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join()
