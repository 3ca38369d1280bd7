"""What the /status_check tests share: a database that lacks one of this code's migrations."""

from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from liveness import runtime


@pytest.fixture
def one_migration_unapplied(db: None) -> Iterator[tuple[str, str]]:
    """The test database with this code's latest capture migration recorded as not applied:
    what a pod started before the migration Job finished reads (the test's transaction puts
    the record back)."""
    executor = MigrationExecutor(connection)
    latest = max(node for node in executor.loader.graph.leaf_nodes() if node[0] == "capture")
    executor.recorder.record_unapplied(*latest)
    runtime.forget()
    yield latest
    runtime.forget()
