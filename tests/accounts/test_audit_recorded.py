"""accounts.audit.recorded, which every admin change with a history entry goes through (a
hash_id issued or revoked, a quota reset, a shadow candidate switched, a calibration
reverted): the change and its entry are kept together or not at all, and a refusal by the
database is logged and said on the page. Real SQLite, in autocommit as the admin runs."""

import logging

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.http import HttpRequest
from django.test import RequestFactory

from accounts import audit
from accounts.models import Tenant
from tests.history import history_refused

pytestmark = pytest.mark.django_db(transaction=True)  # autocommit: no test transaction

log = logging.getLogger("tests.accounts.recorded")


def admin_request() -> HttpRequest:
    request = RequestFactory().post("/admin/")
    request._messages = CookieStorage(request)  # type: ignore[attr-defined]  # as the middleware
    return request


def said(request: HttpRequest) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(request)]


def added(name: str) -> Tenant:
    """The change: a tenant added, with its history entry."""
    tenant = Tenant.objects.create(name=name)
    audit.record(tenant, "Added.", added=True)
    return tenant


def test_the_change_and_its_entry_are_kept_together() -> None:
    request = admin_request()
    tenant = audit.recorded(request, lambda: added("Kept"), "Kept: not added.", log, "failed")
    assert tenant == Tenant.objects.get()
    assert list(LogEntry.objects.values_list("object_repr", "change_message")) == [
        ("Kept", "Added.")
    ]
    assert said(request) == []


def test_a_refused_entry_rolls_the_change_back_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    request = admin_request()
    with caplog.at_level(logging.ERROR, log.name), history_refused():
        result = audit.recorded(
            request, lambda: added("Refused"), "Refused: not added.", log, "%s: adding failed", "R"
        )
    assert result is None
    assert not Tenant.objects.exists() and not LogEntry.objects.exists()  # the tenant too
    assert said(request) == [("error", f"Refused: not added. {audit.NOT_WRITTEN}")]
    (record,) = [r for r in caplog.records if r.name == log.name]
    assert record.getMessage() == "R: adding failed"
    assert record.exc_info is not None and "history down" in str(record.exc_info[1])


def test_another_error_rolls_the_change_back_and_is_raised() -> None:
    """Only the database's refusal is answered None: any other error (calibration.admin's
    NoShadow, CandidateGone) reaches the caller, the change rolled back all the same."""

    def refused() -> Tenant:
        added("Raised")
        raise LookupError("gone")

    request = admin_request()
    with pytest.raises(LookupError, match="gone"):
        audit.recorded(request, refused, "Raised: not added.", log, "failed")
    assert not Tenant.objects.exists() and not LogEntry.objects.exists()
    assert said(request) == []
