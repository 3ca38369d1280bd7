"""Django's PostgreSQL backend, with every wait for the server's answer bounded.

``statement_timeout`` and ``lock_timeout`` (settings: OPTIONS) end a slow query or a lock wait
on the server, ``connect_timeout`` a connection that does not complete. None of them ends a
wait on a server that does not run at all (frozen, a paused VM, a swap storm): its kernel
still acknowledges every packet, so TCP keepalives and ``tcp_user_timeout`` never fire either.
Measured with the cluster SIGSTOPped (tests/system/test_db_freeze.py): every request waited as long
as the freeze, /status_check included (frozen 120 s: no answer at all within the clients' 40 s;
a SELECT 1 under keepalives + tcp_user_timeout=2000 or statement_timeout=2000 answered once
the server was resumed, after 8 s of 8 s frozen). Here the client stops
waiting after OPTIONS ``wait_timeout`` seconds, closes the connection (its state is unknown)
and raises OperationalError, which the views answer 503.
"""

from functools import cache
from typing import Any

import psycopg
from django.db.backends.postgresql import base
from psycopg.errors import _WaitTimeout  # raised by Connection.wait(timeout=...)


class BoundedConnection(psycopg.Connection[Any]):
    """A psycopg connection whose every wait for the server ends after ``wait_s`` seconds."""

    __slots__ = ()
    wait_s: float | None = None

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        try:
            return super().wait(gen, interval, self.wait_s if timeout is None else timeout)
        except _WaitTimeout:
            self.close()  # mid-protocol: the next request opens a new connection
            raise psycopg.OperationalError(
                f"the database did not answer within {self.wait_s:g} s; connection closed"
            ) from None


@cache
def bounded(wait_s: float) -> type[BoundedConnection]:
    return type("BoundedConnection", (BoundedConnection,), {"__slots__": (), "wait_s": wait_s})


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        self._wait_s: float | None = params.pop("wait_timeout", None)
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        if self._wait_s:
            # psycopg.connect makes a plain Connection; the subclass adds no state.
            connection.__class__ = bounded(self._wait_s)
        return connection
