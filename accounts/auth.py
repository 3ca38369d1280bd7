"""``require_hash_id``: authenticate a JSON request by its hash_id before anything else runs."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest
from django.http.response import HttpResponseBase, JsonResponse

from accounts.models import HashId, Tenant
from guard import throttle

INVALID_CREDENTIALS = "Invalid credentials"
# Issued hash_ids are 43 ASCII characters; anything else cannot match and is not looked up.
MAX_HASH_ID_LENGTH = 128

View = Callable[..., HttpResponseBase]


def _tenant_for(hash_id: str | None) -> Tenant | None:
    if not hash_id or len(hash_id) > MAX_HASH_ID_LENGTH or not hash_id.isascii():
        return None
    return HashId.tenant_for(hash_id)


def require_hash_id(view: View) -> View:
    """Resolve ``request.payload["hash_id"]`` to ``request.tenant`` or answer 401.

    Expects ``request.payload`` (the parsed JSON object) to be set by an outer decorator.
    A client (IP) with too many recent failures is refused with 429 before any lookup.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        hash_id = request.payload.get("hash_id")  # type: ignore[attr-defined]
        if hash_id is not None and not isinstance(hash_id, str):
            return JsonResponse({"error": "hash_id must be a string."}, status=400)
        if blocked := throttle.auth_blocked(request):
            return blocked
        tenant = _tenant_for(hash_id)
        if tenant is None:
            throttle.auth_failed(request)
            return JsonResponse({"message": INVALID_CREDENTIALS}, status=401)
        request.tenant = tenant  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapper


def tenant_rate_limit(view: View) -> View:
    """429 once ``request.tenant`` exceeds its ``rate_limit_per_minute`` (when it has one)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        tenant: Tenant = request.tenant  # type: ignore[attr-defined]
        if refused := throttle.tenant_rate_exceeded(tenant.pk, tenant.rate_limit_per_minute):
            return refused
        return view(request, *args, **kwargs)

    return wrapper
