"""Deleting a tenant while its checks run (PostgreSQL: SQLite's write transactions already
take the whole database, so a check cannot commit inside a deletion there)."""

from tests.conftest import run_on_database, scratch_database


def test_a_check_meanwhile_waits_for_the_deletion_then_gets_401() -> None:
    """Unlocked, the check's unit and record committed between the deletion of the tenant's
    checks and of its row: the deletion failed on the record's foreign key (the admin's
    500; 12 of 15 deletions under /liveness traffic). The tenant's row is now locked first:
    the check waits for it, then finds no tenant."""
    with scratch_database("facia_tenant_delete") as url:
        outcome = run_on_database("tests.accounts.tenant_delete_race", url, timeout=180)
    assert outcome == {
        "vendor": "postgresql",
        "deletion": "deleted",
        "check": 401,
        "tenant_left": False,
        "records_left": 0,
    }
