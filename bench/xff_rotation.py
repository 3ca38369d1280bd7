"""A client rotating X-Forwarded-For against the failed-auth throttle, on a real gunicorn:
how many of 500 bad hash_ids get 401 (tried) and 429 (throttled). Run it once for the old tree
with ``TRUSTED_PROXY_COUNT=1`` and once for this one with ``TRUSTED_PROXIES`` naming a proxy
that is not the client (the client is loopback, not behind the proxy):

    python -m bench.xff_rotation --tree /tmp/old TRUSTED_PROXY_COUNT=1
    python -m bench.xff_rotation TRUSTED_PROXIES=10.0.0.0/8
"""

from __future__ import annotations

import argparse
import collections
import tempfile
from pathlib import Path

import requests

from bench.gunicorn import served
from bench.images import REPO


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", type=Path, default=REPO)
    parser.add_argument("--port", type=int, default=5403)
    parser.add_argument("setting", nargs="*", help="NAME=VALUE for the server")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="facia-xff-"))
    settings = dict(item.split("=", 1) for item in args.setting)
    with served(args.tree, work, args.port, **settings) as server:
        base = server.base
        statuses: collections.Counter[int] = collections.Counter()
        with requests.Session() as session:
            for n in range(500):
                forwarded = f"203.0.{n // 250}.{n % 250 + 1}"
                response = session.post(
                    f"{base}/liveness",
                    json={"hash_id": "guess", "selfie_image": "x"},
                    headers={"X-Forwarded-For": forwarded},
                    timeout=30,
                )
                statuses[response.status_code] += 1
        print(f"{' '.join(args.setting) or '(defaults)'}: {dict(sorted(statuses.items()))}")


if __name__ == "__main__":
    main()
