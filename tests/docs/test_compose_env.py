"""docs/operator/deployment.md's compose steps: `cp .env.example .env`, set the values there,
`docker compose up`. Every variable of docs/operator/configuration.md set in .env reaches the
service: compose.yaml gives the service .env as its env_file, beside the variables it lists.
Without env_file, only those listed would: DJANGO_SECURE=1 or CAPTURE_ALLOWED_ORIGINS written
in .env would be dropped without a word (compose reads .env only to fill in ${...} by itself).
(compose.yaml against the compose-spec schema: tests/deploy/test_deploy_files.py.)"""

import re
from typing import Any

import yaml

from tests.conftest import REPO

DEPLOYMENT = REPO / "docs" / "operator" / "deployment.md"
CONFIGURATION = REPO / "docs" / "operator" / "configuration.md"


def service() -> dict[str, Any]:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    return dict(compose["services"]["liveness"])


def test_the_page_says_dot_env_holds_the_services_settings() -> None:
    text = " ".join(DEPLOYMENT.read_text(encoding="utf-8").split())
    assert "cp .env.example .env # set POSTGRES_PASSWORD and SECRET_KEY" in text
    assert "the service's environment is `.env` (its `env_file`" in text


def test_every_configuration_variable_set_in_dot_env_reaches_the_service() -> None:
    names = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", CONFIGURATION.read_text(), re.M))
    assert {"DJANGO_SECURE", "CAPTURE_ALLOWED_ORIGINS", "CSRF_TRUSTED_ORIGINS"} <= names
    env_file = service().get("env_file")
    files = [env_file] if isinstance(env_file, str) else list(env_file or [])
    listed = set(service().get("environment") or {})
    dropped = sorted(names - listed) if ".env" not in files else []
    assert dropped == [], f"set in .env, never passed to the service: {dropped}"
