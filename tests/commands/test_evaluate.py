"""manage.py evaluate."""

from pathlib import Path

import pytest
from django.core.management import CommandError

from tests.commands import run
from tests.conftest import DEV_DATA


def test_evaluate_dev_set(warm_engine: None, db: None) -> None:
    report = "\n".join(run("evaluate", str(DEV_DATA)))
    for figure in ("APCER", "BPCER", "ACER", "AUC", "EER"):
        assert figure in report
    auc = float(next(line.split()[-1] for line in report.splitlines() if "AUC" in line))
    assert auc > 0.5


def test_evaluate_rejects_a_bad_folder(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="live/ and spoof/"):
        run("evaluate", str(tmp_path))
