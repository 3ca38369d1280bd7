"""Under CI a test whose tool (chromium, nginx) is missing fails instead of skipping."""

import pytest

from tests.conftest import ci_requires_everything, skip_or_fail


@pytest.mark.parametrize(
    ("env", "fatal"),
    [
        ({}, False),
        ({"CI": ""}, False),
        ({"CI": "0"}, False),
        ({"CI": "false"}, False),
        ({"CI": "true"}, True),
        ({"CI": "1"}, True),
        ({"CI": "yes"}, True),
    ],
)
def test_ci_decides_whether_a_missing_tool_fails(env: dict[str, str], fatal: bool) -> None:
    assert ci_requires_everything(env) is fatal


def test_missing_tool_skips_outside_ci() -> None:
    with pytest.raises(pytest.skip.Exception, match="no nginx"):
        skip_or_fail("no nginx", {})


def test_missing_tool_fails_under_ci() -> None:
    with pytest.raises(pytest.fail.Exception, match="no nginx .CI is set"):
        skip_or_fail("no nginx", {"CI": "true"})
