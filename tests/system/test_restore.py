"""A backup restored as docs/operator/deployment.md says (the file in place of db.sqlite3 in a new
var directory, bin/entrypoint migrate, serve): with the key file, the hash_ids of before
authenticate, each tenant's quota and counts are as backed up, a tenant at its limit stays
refused, and an admin signed in before is still signed in. Without the key file, a new key is
made: the hash_ids and quotas are the same (their digests are plain SHA-256, no key), and only
the admin sessions end."""

import shutil
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import requests
from django.conf import settings

from tests.servers.clients import admin_session, create_tenant, post, selfie_body
from tests.servers.entrypoint import Served, entrypoint_env, entrypoint_server, run_entrypoint
from tests.servers.ledger import Ledger, ledger

pytestmark = [pytest.mark.system, pytest.mark.slow]

LIMIT = 2  # "capped" reaches it before the backup


def var_of(var: Path) -> dict[str, str]:
    """The service's own var directory (database and key file), the models installed once."""
    return {"FACIA_VAR_DIR": str(var), "MODEL_DIR": str(settings.MODEL_DIR), "SECRET_KEY": ""}


def serving(var: Path) -> AbstractContextManager[Served]:
    return entrypoint_server(var, None, **var_of(var))


def books(database: Path) -> dict[str, Ledger]:
    return {name: ledger(f"sqlite:///{database}", name) for name in ("capped", "open")}


def restore(backup: Path, var: Path, key: Path | None) -> None:
    """What the operator does: the backup in place of db.sqlite3, the key file beside it (or
    not), then bin/entrypoint migrate."""
    var.mkdir()
    shutil.copyfile(backup, var / "db.sqlite3")
    if key is not None:
        shutil.copy2(key, var / "secret_key")
    done = run_entrypoint(entrypoint_env(var, 0, **var_of(var)), "migrate")
    assert done.returncode == 0, done.stdout + done.stderr


def answers(served: Served, hash_id: str, tag: str) -> int:
    return post(served.base, selfie_body(hash_id), tag).status


def admin_index(served: Served, session_id: str) -> int:
    reply = requests.get(
        f"{served.base}/admin/",
        cookies={"sessionid": session_id},
        allow_redirects=False,
        timeout=60,
    )
    return reply.status_code


def test_a_backup_restores_with_its_key_file_or_without(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    backup = tmp_path / "facia.sqlite3"
    with serving(source) as served:
        hash_ids = {"capped": create_tenant(served.env, "capped", LIMIT)}
        hash_ids["open"] = create_tenant(served.env, "open")
        statuses = [answers(served, hash_ids["capped"], f"capped-{i}") for i in range(LIMIT + 1)]
        statuses += [answers(served, hash_ids["open"], f"open-{i}") for i in range(2)]
        assert statuses == [201] * LIMIT + [429] + [201] * 2
        session_id = admin_session(served.base, served.env).cookies.get("sessionid")
        assert session_id is not None
        assert admin_index(served, session_id) == 200
        served.manage("backup", str(backup))
    before = books(backup)
    assert [before["capped"].requests_used, before["open"].requests_used] == [LIMIT, 2]

    restore(backup, tmp_path / "with-key", source / "secret_key")
    with serving(tmp_path / "with-key") as served:
        assert books(tmp_path / "with-key" / "db.sqlite3") == before
        assert admin_index(served, session_id) == 200
        assert answers(served, hash_ids["capped"], "capped-restored") == 429
        assert answers(served, hash_ids["open"], "open-restored") == 201
    after = books(tmp_path / "with-key" / "db.sqlite3")
    assert after["capped"] == before["capped"]
    assert after["open"].requests_used == len(after["open"].consuming) == 3
    assert sorted(after["open"].consuming) == sorted([*before["open"].consuming, "open-restored"])

    restore(backup, tmp_path / "no-key", None)
    with serving(tmp_path / "no-key") as served:
        assert (tmp_path / "no-key" / "secret_key").read_bytes() != (
            source / "secret_key"
        ).read_bytes()
        assert admin_index(served, session_id) == 302  # to the login page: sign in again
        assert answers(served, hash_ids["capped"], "capped-no-key") == 429
        assert answers(served, hash_ids["open"], "open-no-key") == 201
