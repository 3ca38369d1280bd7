"""``authenticate``: the tenant a hash_id names, or None (liveness.views.admit answers 401)."""

from accounts.models import HashId, Tenant, digest_of

# Issued hash_ids are 43 ASCII characters; anything else cannot match and is not looked up.
MAX_HASH_ID_LENGTH = 128


def owner_of(hash_id: str | None) -> Tenant | None:
    """The tenant a hash_id was issued to, revoked or inactive too: only to count its 401."""
    if not hash_id or len(hash_id) > MAX_HASH_ID_LENGTH or not hash_id.isascii():
        return None
    found = HashId.objects.filter(digest=digest_of(hash_id)).select_related("tenant").first()
    return None if found is None else found.tenant


def authenticate(hash_id: str | None) -> Tenant | None:
    """The active tenant of an unrevoked ``hash_id``, else None."""
    if not hash_id or len(hash_id) > MAX_HASH_ID_LENGTH or not hash_id.isascii():
        return None
    return HashId.tenant_for(hash_id)
