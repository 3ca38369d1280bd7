"""manage.py prune_sessions."""

from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import HashId
from capture.models import CaptureSession
from capture.service import open_session


def test_prune_sessions(make_tenant: Any) -> None:
    tenant, _ = make_tenant()
    credential = HashId.objects.get(tenant=tenant)
    old, new = open_session(tenant, credential).session, open_session(tenant, credential).session
    CaptureSession.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    call_command("prune_sessions", "--days", "1")
    assert list(CaptureSession.objects.values_list("pk", flat=True)) == [new.pk]


def test_prune_sessions_refuses_days_no_date_can_reach(db: None) -> None:
    """Was an OverflowError's traceback."""
    with pytest.raises(CommandError, match="must be 0 to 36500"):
        call_command("prune_sessions", "--days", "99999999999")
