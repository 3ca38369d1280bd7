"""Management commands: tenants, hash_ids, quotas, model install, evaluate."""

from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from accounts.models import HashId, Tenant
from tests.conftest import DEV_DATA


def run(*args: str) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_create_tenant_prints_hash_id_last(db: None) -> None:
    lines = run("create_tenant", "Acme", "--limit", "100", "--threshold", "0.6")
    tenant = Tenant.objects.get(name="Acme")
    assert (tenant.request_limit, tenant.threshold) == (100, 0.6)
    assert HashId.tenant_for(lines[-1]) == tenant
    assert len(lines[-1]) == 43


def test_create_tenant_defaults_to_unlimited(db: None) -> None:
    run("create_tenant", "Free")
    tenant = Tenant.objects.get(name="Free")
    assert (tenant.request_limit, tenant.threshold) == (None, 0.5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threshold", "1.5"], "threshold"),
        (["--threshold", "-0.1"], "threshold"),
        (["--limit", "-1"], "--limit"),
    ],
)
def test_create_tenant_rejects_bad_input(db: None, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run("create_tenant", "Bad", *args)
    assert not Tenant.objects.exists()


def test_create_tenant_twice_fails(db: None) -> None:
    run("create_tenant", "Acme")
    with pytest.raises(CommandError, match="already exists"):
        run("create_tenant", "Acme")


def test_issue_hash_id(db: None) -> None:
    first = run("create_tenant", "Acme")[-1]
    second = run("issue_hash_id", "Acme")[-1]
    tenant = Tenant.objects.get(name="Acme")
    assert first != second
    assert HashId.tenant_for(first) == HashId.tenant_for(second) == tenant
    with pytest.raises(CommandError, match="No tenant named"):
        run("issue_hash_id", "Nobody")


def test_reset_quotas(db: None) -> None:
    Tenant.objects.create(name="a", requests_used=5)
    Tenant.objects.create(name="b", requests_used=6)
    Tenant.objects.create(name="c", requests_used=7)
    assert (
        run("reset_quotas", "--tenant", "a", "--tenant", "b")[-1] == "Quota reset for 2 tenant(s)."
    )
    assert dict(Tenant.objects.values_list("name", "requests_used")) == {"a": 0, "b": 0, "c": 7}
    run("reset_quotas")
    assert set(Tenant.objects.values_list("requests_used", flat=True)) == {0}
    with pytest.raises(CommandError, match="No tenant named: zed"):
        run("reset_quotas", "--tenant", "zed")


def test_install_models_is_idempotent(warm_engine: None) -> None:
    assert run("install_models")[-1] == f"Models already up to date in {settings.MODEL_DIR}"


def test_install_models_reports_a_bad_source(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="MODEL_SOURCE"):
        run("install_models", "--source", str(tmp_path / "nowhere"), "--dest", str(tmp_path / "m"))


def test_evaluate_dev_set(warm_engine: None, db: None) -> None:
    report = "\n".join(run("evaluate", str(DEV_DATA)))
    for figure in ("APCER", "BPCER", "ACER", "AUC", "EER"):
        assert figure in report
    auc = float(next(line.split()[-1] for line in report.splitlines() if "AUC" in line))
    assert auc > 0.5


def test_evaluate_rejects_a_bad_folder(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="live/ and spoof/"):
        run("evaluate", str(tmp_path))
