"""A page that meets a database which does not answer: 503, as /liveness answers.

The API views answer it themselves (liveness.jsonapi.JsonAPIView); any other view (the admin,
whose session and pages read the database) would raise it to Django, which answers 500 and
logs a traceback per page for as long as the database is down."""

import logging

from django.db import Error, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

from liveness import answers, runtime
from liveness.answers import Rejection
from telemetry.logs import database_error, outage_answer

log = logging.getLogger(__name__)


class DatabaseUnavailableMiddleware(MiddlewareMixin):
    """Down, restarting, lost, locked or full: 503 with ``Retry-After``. An error the database
    reports about a statement (a bug's ProgrammingError, an IntegrityError) stays a 500. Only
    ``process_exception``: a request that raises nothing runs no line of this module."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        return database_unavailable(request, exception)


def database_unavailable(request: HttpRequest, exc: Error) -> HttpResponse:
    """The 503 of a database that did not answer (here and in the API views): nothing was
    committed, the client may retry. One that did not answer at all, or cannot take a write
    (disk full, read-only), is the worker's one WARNING while it lasts (liveness.runtime), the
    answer its access line: each request logged two ERROR lines, 40 for 20 requests. Any other
    error the database reported (a lock or statement timeout) is one ERROR per request, ours:
    Django's "Service Unavailable" record for the same 503 is dropped."""
    if not (runtime.database_failed(exc) or runtime.cannot_record(exc)):
        log.error("database unavailable: %s", database_error(exc))
    outage_answer(request)
    return answers.respond(Rejection("not_ready", retry_after=1))
