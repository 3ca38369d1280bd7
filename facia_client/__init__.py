"""A small client for the liveness service (standard library only).

from facia_client import FaciaClient
verdict = FaciaClient("http://127.0.0.1:5001", hash_id).check("selfie.jpg")
"""

from facia_client.client import (
    AuthError,
    Conflict,
    FaciaClient,
    FaciaError,
    ImageRejected,
    NotFound,
    QuotaExceeded,
    RateLimited,
    ServiceError,
    Session,
    Timeout,
    UsageError,
    Verdict,
)

__all__ = [
    "AuthError",
    "Conflict",
    "FaciaClient",
    "FaciaError",
    "ImageRejected",
    "NotFound",
    "QuotaExceeded",
    "RateLimited",
    "ServiceError",
    "Session",
    "Timeout",
    "UsageError",
    "Verdict",
]
