"""manage.py prune_counters."""

import time
from io import StringIO

from django.core.management import call_command

from guard.models import Counter


def test_prune_counters_keeps_windows_a_throttle_may_still_count_in(db: None) -> None:
    now = time.time()
    Counter.objects.create(scope="auth-fail", subject="1.2.3.4", bucket=0, hits=3)
    Counter.objects.create(scope="auth-fail", subject="1.2.3.4", bucket=int(now) - 60, hits=1)
    out = StringIO()
    call_command("prune_counters", stdout=out)
    assert list(Counter.objects.values_list("bucket", flat=True)) == [int(now) - 60]
    assert "deleted 1 expired throttle window(s)" in out.getvalue()
