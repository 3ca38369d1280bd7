"""``require_hash_id``: authenticate a JSON request by its hash_id before anything else runs."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from accounts.models import HashId

INVALID_CREDENTIALS = "Invalid credentials"

View = Callable[..., HttpResponse]


def require_hash_id(view: View) -> View:
    """Resolve ``request.payload["hash_id"]`` to ``request.tenant`` or answer 401.

    Expects ``request.payload`` (the parsed JSON object) to be set by an outer decorator.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        hash_id = request.payload.get("hash_id")  # type: ignore[attr-defined]
        if hash_id is not None and not isinstance(hash_id, str):
            return JsonResponse({"error": "hash_id must be a string."}, status=400)
        tenant = HashId.tenant_for(hash_id) if hash_id else None
        if tenant is None:
            return JsonResponse({"message": INVALID_CREDENTIALS}, status=401)
        request.tenant = tenant  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapper
