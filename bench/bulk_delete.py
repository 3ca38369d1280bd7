"""A bulk "Delete selected" of many check records from the admin's list, on a real gunicorn
(one worker, SQLite): the list's "Select all" of one tenant's records, then the action's
confirmation page (its time, size and links to rows) and its "Yes, I'm sure" posted as a
browser posts that page's form (the deletion), with the worker's memory (VmRSS, and its peak
VmHWM) before and after each. ``--tree`` serves another checkout (``git archive main | tar -x
-C /tmp/old``) with this checkout's models, for a before/after:

    python -m bench.bulk_delete [--rows 100000] [--sessions 0] [--tree DIR] [--port 5791]

``--sessions N``: the first N records each have the capture session that copied their verdict
(its ``selfie_check_id``), deleted with them where the served tree deletes a record's copies.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

from bench.gunicorn import Served, http_workers, served
from bench.images import REPO
from bench.tenant_delete import PASSWORD, TOKEN, USER, logged_in, timed

# Run by ``manage.py shell -c`` in the served tree: a superuser, then a tenant with ROWS check
# records and, for the first SESSIONS of them, the capture session that copied each one's
# verdict, inserted in batches (no image: the records keep none).
FILL = """
from datetime import timedelta
from django.contrib.auth.models import User
from django.utils import timezone
from accounts.models import Tenant
from capture.models import CaptureSession
from liveness.models import LivenessCheck
User.objects.create_superuser({user!r}, 'b@example.com', {password!r})
tenant = Tenant.objects.create(name='bank')
checks = (LivenessCheck(tenant=tenant, is_live=True, score=0.9, latency_ms=40.0)
          for _ in range({rows}))
LivenessCheck.objects.bulk_create(checks, batch_size=5000)
expires = timezone.now() + timedelta(hours=1)
copied = LivenessCheck.objects.order_by('pk').values_list('pk', flat=True)[:{sessions}]
sessions = (CaptureSession(tenant=tenant, token_digest='0' * 64, expires_at=expires,
                           state='done', is_live=True, score=0.9, selfie_check_id=pk)
            for pk in copied.iterator())
CaptureSession.objects.bulk_create(sessions, batch_size=5000)
print(tenant.pk, LivenessCheck.objects.order_by('pk').first().pk)
"""

ROW_LINK = re.compile(r'href="/admin/liveness/livenesscheck/\d+/change/"')


class ConfirmForm(HTMLParser):
    """The fields of the page's form that carries ``post`` (its "Yes, I'm sure"), as a browser
    posts them: every input's name and value, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[list[tuple[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "form":
            self.forms.append([])
        elif tag == "input" and self.forms:
            named = dict(attrs)
            if named.get("name") and named.get("type") != "submit":
                self.forms[-1].append((named["name"] or "", named.get("value") or ""))

    def fields(self) -> list[tuple[str, str]] | None:
        return next((f for f in self.forms if any(name == "post" for name, _ in f)), None)


def measure(server: Served, tenant: int, first: int) -> None:
    session = logged_in(server.base)
    (worker,) = http_workers(server.pid)
    url = f"{server.base}/admin/liveness/livenesscheck/?tenant__id__exact={tenant}"
    listed = session.get(url, timeout=60)  # also warms the admin's imports
    token = TOKEN.search(listed.text).group(1)  # type: ignore[union-attr]  # no match: an error
    chosen = {
        "csrfmiddlewaretoken": token,
        "action": "delete_selected",
        "select_across": "1",
        "index": "0",
        "_selected_action": str(first),
    }
    headers = {"Referer": url}
    page = timed(
        "confirmation page (POST: Delete selected, select all)",
        worker,
        lambda: session.post(url, data=chosen, headers=headers, timeout=600),
    )
    if page is None:
        print("no page: stopped")
        return
    print(f"  links to a check record: {len(ROW_LINK.findall(page.text)):,}")
    parser = ConfirmForm()
    parser.feed(page.text)
    fields = parser.fields()
    if fields is None:
        print("no form to confirm: stopped")
        return
    print(f"  fields its form posts: {len(fields):,}")
    answer = timed(
        "Yes, I'm sure (POST: the deletion)",
        worker,
        lambda: session.post(url, data=fields, headers=headers, timeout=600, allow_redirects=False),
    )
    if answer is not None and answer.status_code == 400:
        print(f"  {answer.text.strip()[:120]}")
    left = server.manage(
        "shell",
        "-c",
        "from liveness.models import LivenessCheck; from capture.models import CaptureSession; "
        "from django.contrib.admin.models import LogEntry; print(LivenessCheck.objects.count(), "
        "CaptureSession.objects.count(), LogEntry.objects.count())",
    )
    print(f"check records, sessions, history entries left: {left.strip().splitlines()[-1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--sessions", type=int, default=0)
    parser.add_argument("--tree", type=Path, default=REPO)
    parser.add_argument("--port", type=int, default=5791)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bulk-delete-"))
    with served(args.tree.resolve(), work, args.port, workers=1) as server:
        start = time.perf_counter()
        fill = FILL.format(user=USER, password=PASSWORD, rows=args.rows, sessions=args.sessions)
        tenant, first = server.manage("shell", "-c", fill).strip().splitlines()[-1].split()
        took = time.perf_counter() - start
        print(f"{args.rows:,} check records, {args.sessions:,} sessions inserted in {took:.1f} s")
        measure(server, int(tenant), int(first))


if __name__ == "__main__":
    main()
