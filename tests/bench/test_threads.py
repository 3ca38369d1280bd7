"""bench.threads.Threads, the client threads of tests/system/test_backup.py and the load
benchmarks: started by the ``with`` block, stopped and joined when it ends."""

import threading

from bench.threads import Threads


def test_threads_run_within_the_block_and_are_joined_when_it_ends() -> None:
    group = Threads()
    running = threading.Semaphore(0)
    ended: list[str] = []

    def client(name: str) -> None:
        running.release()
        group.stopping.wait()
        ended.append(name)

    group.spawn(client, "a")
    group.spawn(client, "b")
    assert not running.acquire(blocking=False)  # nothing runs before the block
    with group as entered:
        assert entered is group
        assert running.acquire(timeout=30) and running.acquire(timeout=30)
        assert ended == []  # each runs until the block ends
    assert sorted(ended) == ["a", "b"]
    assert not any(thread.is_alive() for thread in group.threads)
