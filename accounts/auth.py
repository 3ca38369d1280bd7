"""``authenticate``: the tenant a hash_id names, or None (liveness.decorators answers 401)."""

from accounts.models import HashId, Tenant

# Issued hash_ids are 43 ASCII characters; anything else cannot match and is not looked up.
MAX_HASH_ID_LENGTH = 128


def authenticate(hash_id: str | None) -> Tenant | None:
    """The active tenant of an unrevoked ``hash_id``, else None."""
    if not hash_id or len(hash_id) > MAX_HASH_ID_LENGTH or not hash_id.isascii():
        return None
    return HashId.tenant_for(hash_id)
