"""facia-client SELFIE [--url URL] [--hash-id HASH_ID] [--timeout S] [--idempotency-key KEY]
facia-client session open [--url URL] [--hash-id HASH_ID]
facia-client session get SESSION_ID [--url URL] [--hash-id HASH_ID]

(also ``python -m facia_client ...``). Prints the verdict, or the session, as JSON on stdout
and exits with:
  0 live (or a session call answered), 1 spoof, 2 usage error, 3 invalid credentials,
  4 image refused (422, or a 400/413 refusing the selfie), 5 request limit or throttle (429),
  6 service unreachable, timed out, unknown session, server error, another 400 (a Host the
  service does not allow), or an unexpected error.
Errors go to stderr as one JSON object, with the service's `code` and `retry_after` when
it sent them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
from typing import Any, NoReturn

from facia_client.client import (
    DEFAULT_TIMEOUT,
    FaciaClient,
    FaciaError,
    ServiceError,
    UsageError,
)

LIVE, SPOOF, USAGE = 0, 1, 2
# The description's lines as written: one command form per line (argparse rewraps them).
RAW = argparse.RawDescriptionHelpFormatter


# argparse quotes what was typed in its errors: a mistyped option (--hash_id=SECRET), a hash_id
# where a command or a number was expected (session SECRET, --timeout SECRET), or one that
# starts with "-" (-q5ap..., read as an unknown option; -hSECRET, read as -h with a value) put
# the hash_id on stderr, hence in CI logs and terminal scrollback. Only a word that is one of
# the command's option names (or a name before "=") is repeated; abbreviations are off
# (allow_abbrev=False), so "--h=SECRET" is an unknown word, not an "ambiguous option" quoted.
_UNRECOGNISED = "unrecognized arguments: "
_INVALID_VALUE = re.compile(r"(invalid (?:choice|[\w ]+ value): )(?:'[^']*'|\"[^\"]*\")")
_EXPLICIT = re.compile(r"(ignored explicit argument )(?:'[^']*'|\"[^\"]*\").*")
_AMBIGUOUS = re.compile(r"ambiguous option: .* could match ")
HIDDEN = "(value not shown)"
# The options both forms take with a value: they may come before `session`.
GLOBAL_VALUED = ("--url", "--hash-id", "--timeout")


def _name_of(word: str, known: frozenset[str]) -> str | None:
    """The option name ``word`` is (or has before "="), or a spelling of one with "_" for "-"
    (--hash_id=...), kept so that the error says what is wrong; None for anything else."""
    name = word.split("=", 1)[0]
    if name in known or name.replace("_", "-") in known:
        return name
    return None


def without_values(message: str, known: frozenset[str] = frozenset()) -> str:
    """An argparse error with every value typed left out: of the words typed, only ``known``
    option names (or one with "_" for "-") are kept."""
    if message.startswith(_UNRECOGNISED):
        words = message.removeprefix(_UNRECOGNISED).split()
        names = [name for name in (_name_of(w, known) for w in words) if name is not None]
        if not names:
            return f"unexpected argument(s) {HIDDEN}"
        return f"{_UNRECOGNISED}{' '.join(names)} (values not shown)"
    message = _EXPLICIT.sub(rf"\1{HIDDEN}", message)
    message = _AMBIGUOUS.sub(f"ambiguous option: {HIDDEN} could match ", message)
    return _INVALID_VALUE.sub(rf"\1{HIDDEN}", message)


class _Parser(argparse.ArgumentParser):
    def __init__(self, prog: str) -> None:
        description = (__doc__ or "").split("\n\n")[0]
        super().__init__(
            prog=prog, description=description, formatter_class=RAW, allow_abbrev=False
        )

    def error(self, message: str) -> NoReturn:
        """One JSON object on stderr, as every error (``status`` null: nothing was sent),
        without argparse's usage lines before it; ``--help`` shows the usage."""
        usage = UsageError(f"{without_values(message, OPTION_NAMES)} (see {self.prog} --help)")
        print(json.dumps(usage.as_dict()), file=sys.stderr)
        sys.exit(USAGE)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get("FACIA_URL", "http://127.0.0.1:5001"),
        help="service address (default: $FACIA_URL or http://127.0.0.1:5001)",
    )
    parser.add_argument(
        "--hash-id",
        default=os.environ.get("FACIA_HASH_ID", ""),
        help="the tenant's hash_id (default: $FACIA_HASH_ID, which keeps it out of `ps`); "
        "write --hash-id=VALUE for a value that starts with '-'",
    )
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds (default 30)"
    )


def _session_parser() -> _Parser:
    parser = _Parser("facia-client session")
    parser.add_argument("action", choices=["open", "get"])
    parser.add_argument("session_id", nargs="?", help="for `get`")
    _common(parser)
    return parser


def _selfie_parser() -> _Parser:
    parser = _Parser("facia-client")
    parser.add_argument("selfie", help="a PNG or JPEG file (./session for a file so named)")
    parser.add_argument(
        "--idempotency-key",
        default=None,
        help="sent as Idempotency-Key: run again with the same key and file after a timeout "
        "or a 5xx, and a verdict already given is answered again without a second unit",
    )
    _common(parser)
    return parser


def _first_positional(argv: list[str]) -> int | None:
    """The index of the first word that is not an option or a global option's value: `session`
    there is the command, after --url, --hash-id or --timeout too (both forms take them)."""
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--":
            return index + 1 if index + 1 < len(argv) else None
        if not word.startswith("-") or word == "-":
            return index
        index += 2 if word in GLOBAL_VALUED else 1
    return None


def parse_args(argv: list[str]) -> argparse.Namespace:
    first = _first_positional(argv)
    if first is not None and argv[first] == "session":
        parser = _session_parser()
        args = parser.parse_args(argv[:first] + argv[first + 1 :])
        if args.action == "get" and not args.session_id:
            parser.error("session get needs a SESSION_ID")
        return args
    return _selfie_parser().parse_args(argv)


OPTION_NAMES = frozenset(
    name
    for parser in (_session_parser(), _selfie_parser())
    for action in parser._actions  # noqa: SLF001  # argparse lists its options nowhere public
    for name in action.option_strings
)


def _session_call(client: FaciaClient, args: argparse.Namespace) -> dict[str, Any]:
    if args.action == "open":
        return dataclasses.asdict(client.open_session())
    return client.session(args.session_id)


def _fail(failure: FaciaError, prog: str) -> int:
    """The error as one JSON object on stderr; a usage error ends with the pointer to --help,
    as argparse's do."""
    error = failure.as_dict()
    if isinstance(failure, UsageError):
        error["error"] = f"{error['error']} (see {prog} --help)"
    print(json.dumps(error), file=sys.stderr)
    return failure.exit_code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    prog = "facia-client session" if "action" in args else "facia-client"
    try:
        client = FaciaClient(args.url, args.hash_id, args.timeout)
        if "action" in args:
            print(json.dumps(_session_call(client, args), allow_nan=False))
            return LIVE
        verdict = client.check(args.selfie, args.idempotency_key)
        print(json.dumps(verdict.as_dict(), allow_nan=False))
    except FaciaError as exc:
        return _fail(exc, prog)
    except Exception as exc:  # a traceback exits 1, which reads as a spoof: exit 6 instead
        unexpected = ServiceError(f"unexpected error in facia-client: {type(exc).__name__}")
        return _fail(unexpected, prog)
    return LIVE if verdict.is_live else SPOOF


def run() -> None:
    """The ``facia-client`` console script."""
    sys.exit(main())


if __name__ == "__main__":
    run()
