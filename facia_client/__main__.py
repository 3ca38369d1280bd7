"""python -m facia_client SELFIE [--url URL] [--hash-id HASH_ID]

Prints the verdict as JSON on stdout and exits with:
  0 live, 1 spoof, 2 usage error, 3 invalid credentials, 4 image refused (400/413/422),
  5 request limit reached, 6 service unreachable or server error.
Errors go to stderr as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from facia_client.client import FaciaClient, FaciaError

LIVE, SPOOF, USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(json.dumps({"error": message, "exit_code": USAGE}), file=sys.stderr)
        sys.exit(USAGE)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="python -m facia_client", description=__doc__.split("\n\n")[0])
    parser.add_argument("selfie", help="a PNG or JPEG file")
    parser.add_argument(
        "--url",
        default=os.environ.get("FACIA_URL", "http://127.0.0.1:5001"),
        help="service address (default: $FACIA_URL or http://127.0.0.1:5001)",
    )
    parser.add_argument(
        "--hash-id",
        default=os.environ.get("FACIA_HASH_ID", ""),
        help="the tenant's hash_id (default: $FACIA_HASH_ID, which keeps it out of `ps`)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        verdict = FaciaClient(args.url, args.hash_id, args.timeout).check(args.selfie)
    except FaciaError as exc:
        failure = {"error": str(exc), "status": exc.status, "exit_code": exc.exit_code}
        if exc.request_id:
            failure["request_id"] = exc.request_id
        print(json.dumps(failure), file=sys.stderr)
        return exc.exit_code
    print(json.dumps(verdict.as_dict()))
    return LIVE if verdict.is_live else SPOOF


if __name__ == "__main__":
    sys.exit(main())
