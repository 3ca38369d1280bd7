"""The session API's own answers (409 conflict, 401 with WWW-Authenticate, 404, the quality
rate's 429), raised as ``Answered``. The answers it shares with /liveness are
``liveness.outcomes.Rejected`` and come from ``liveness.responses.ANSWERS``."""

from django.http import JsonResponse

from guard.counters import Window


class Answered(Exception):
    """Ends the call early with a ready response."""

    def __init__(self, response: JsonResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


def too_many(message: str, window: Window) -> Answered:
    response = JsonResponse({"error": message}, status=429)
    response["Retry-After"] = str(window.retry_after())
    return Answered(response)
