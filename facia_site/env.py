"""Typed readers of the environment for the settings (and gunicorn.conf.py, before Django).

Each rejects a value it cannot read with ``ImproperlyConfigured`` naming the variable, instead
of silently taking junk (``DEBUG=ture`` was False, ``AUTH_FAILURE_LIMIT=2O`` a traceback).
Nothing here creates files or directories.
"""

import ipaddress
import json
import logging
import math
import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


# The placeholders in .env.example and deploy/k8s/secret.example.yaml: public, so no secret.
PLACEHOLDERS = frozenset({"change-me", "replace-me"})


def env_secret(name: str) -> str:
    """A secret from the environment; "" when unset or blank (spaces too: ``SECRET_KEY= `` in
    an env file would be a key of one space). An example's placeholder copied as it is stops
    the start: anyone can read it in the repository (SECRET_KEY=change-me would sign with it;
    METRICS_TOKEN=replace-me would open /metrics, tenant names included, to anyone)."""
    value = os.environ.get(name, "").strip()
    if value.lower() in PLACEHOLDERS:
        raise ImproperlyConfigured(
            f"{name} is still the example's placeholder {value!r}: set a random value, e.g. "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    return value


def env_bool(name: str, default: bool = False) -> bool:
    """Blank is the default: SECURE_SSL_REDIRECT= (on by default) read as false would turn the
    redirect off."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    normalized = value.strip().lower()
    if normalized in TRUE:
        return True
    if normalized in FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r}: expected one of 1/0, true/false, yes/no, on/off")


def env_int(name: str, default: int, minimum: int | None = 0, maximum: int | None = None) -> int:
    """A whole number; ``maximum`` where a larger one would fail later, at a request or in a
    command (SESSION_TTL_S=10**20 would raise OverflowError, a 500, on every new session)."""
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r}: expected a whole number") from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ImproperlyConfigured(f"{name}={value!r}: expected {_bounds(minimum, maximum)}")
    return number


def env_seconds(name: str, default: float) -> float:
    """A number of seconds above 0, fractions allowed (``1.5``); blank is refused."""
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        seconds = float(value.strip())
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ImproperlyConfigured(f"{name}={value!r}: expected a number of seconds above 0")
    return seconds


def env_int_or_default(
    name: str, default: int, minimum: int | None = 0, maximum: int | None = None
) -> int:
    """env_int, but blank (``WEB_CONCURRENCY=``) is the default, as gunicorn's own reading of
    WEB_CONCURRENCY and the jitter's always took it."""
    if not os.environ.get(name, "").strip():
        return default
    return env_int(name, default, minimum=minimum, maximum=maximum)


def _bounds(minimum: int | None, maximum: int | None) -> str:
    if maximum is None:
        return f"at least {minimum}"
    if minimum is None:
        return f"at most {maximum}"
    return f"a whole number from {minimum} to {maximum}"


def env_choice(name: str, default: str, choices: Sequence[str]) -> str:
    value = os.environ.get(name, default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value


# What DATABASE_URL may name (dj-database-url's spellings): the embedded file or PostgreSQL,
# the two databases the project is tested on.
DATABASE_SCHEMES = ("sqlite", "postgres", "postgresql", "pgsql")


def env_database_url(name: str, default: str) -> str:
    """A database URL; unset or blank (``DATABASE_URL=`` in an env file) is the default. Any
    other scheme is refused naming the variable but not its value, which may hold a password
    (unchecked, a blank value or a typo is dj-database-url's traceback listing every
    backend). So is an example's placeholder as the password: .env.example's
    POSTGRES_PASSWORD=change-me reaches compose's DATABASE_URL and the database's own
    password, anyone can read it in the repository, and the database would start with it."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    scheme = value.partition("://")[0].lower() if "://" in value else ""
    if scheme not in DATABASE_SCHEMES:
        shown = f"scheme {scheme!r}" if scheme else "no scheme://"
        raise ImproperlyConfigured(
            f"{name} has {shown}: expected sqlite:///PATH or "
            "postgres://USER:PASSWORD@HOST:PORT/NAME (the value is not shown: it may hold a "
            "password)"
        )
    if (password := _password(value)).lower() in PLACEHOLDERS:
        raise ImproperlyConfigured(
            f"{name}'s password is still the example's placeholder {password!r}: set a random "
            "one (POSTGRES_PASSWORD in .env with compose), e.g. "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return value


# DATABASE_TIMEOUT_S's bounds and its default where the service serves (manage.py's is 0).
DATABASE_TIMEOUT_MAX_S = 86_400
DATABASE_TIMEOUT_DEFAULT_S = 3
# SQLite's busy timeout when DATABASE_TIMEOUT_S is 0 (facia_site.settings.database_config).
SQLITE_UNBOUNDED_WAIT_S = 20
# PostgreSQL's connect_timeout when DATABASE_TIMEOUT_S is 0 (facia_site.settings): a host
# that does not answer still ends the start or the request.
POSTGRESQL_UNBOUNDED_CONNECT_S = 10


def database_wait_within(worker_timeout_s: int) -> str | None:
    """Refuse a DATABASE_TIMEOUT_S that does not end a wait on the database before gunicorn's
    worker timeout (GUNICORN_TIMEOUT) does: the worker is SIGKILLed ("WORKER TIMEOUT") and the
    client's connection dropped, where the request would have been answered 503 +
    Retry-After. 0 is SQLite's busy timeout of 20 s. On PostgreSQL 0 bounds no statement, lock
    or wait for an answer (connecting still times out), which no GUNICORN_TIMEOUT can be
    above; it is taken all the same, being the documented way to send no session setting (a
    pooler that refuses startup options: any other value sends statement_timeout and
    lock_timeout), and what it costs is returned, to be logged once at start as a warning;
    None otherwise."""
    wait_s = env_int(
        "DATABASE_TIMEOUT_S", DATABASE_TIMEOUT_DEFAULT_S, maximum=DATABASE_TIMEOUT_MAX_S
    )
    url = env_database_url("DATABASE_URL", "sqlite://")
    sqlite = url.partition("://")[0].lower() == "sqlite"
    if wait_s == 0 and not sqlite:
        return (
            "DATABASE_TIMEOUT_S=0 on PostgreSQL: no statement, lock or answer bound (connecting "
            f"still times out after {POSTGRESQL_UNBOUNDED_CONNECT_S} s), so a "
            "request waiting on the database past GUNICORN_TIMEOUT "
            f"({worker_timeout_s} s) has its worker killed and its connection dropped instead "
            "of being answered 503"
        )
    if wait_s == 0:
        wait_s, shown = SQLITE_UNBOUNDED_WAIT_S, "0, SQLite's 20 s"
    else:
        shown = str(wait_s)
    if wait_s >= worker_timeout_s:
        raise ImproperlyConfigured(
            f"DATABASE_TIMEOUT_S ({shown}) must be below GUNICORN_TIMEOUT ({worker_timeout_s}): "
            "a request waiting on the database would have its worker killed and its "
            "connection dropped, not answered 503; lower DATABASE_TIMEOUT_S or raise "
            "GUNICORN_TIMEOUT"
        )
    return None


def _password(url: str) -> str:
    """The URL's password, unquoted; "" when it has none or cannot be parsed (the database's
    settings then refuse it, naming the variable)."""
    try:
        return unquote(urlsplit(url).password or "")
    except ValueError:
        return ""


def env_path(name: str, default: Path) -> Path:
    """A directory; unset or blank is the default (``MODEL_DIR=`` in an env file, read
    as it is, would be the current directory: the repository or the image's root)."""
    value = os.environ.get(name, "").strip()
    return Path(value) if value else default


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_hosts(name: str, default: str) -> list[str]:
    """``env_list`` with each bare IPv6 address bracketed, as a Host header spells it and
    Django compares it: Kubernetes' status.podIP on an IPv6 cluster ("fd00::5", appended by
    deploy/k8s) unbracketed matches no ``Host: [fd00::5]``, and Prometheus' scrapes of the pod
    would get 400. None at all (set blank) is refused: the service would start, then answer
    every request 400."""
    hosts = [_bracketed(host) for host in env_list(name, default)]
    if not hosts:
        value = os.environ.get(name, "")
        raise ImproperlyConfigured(
            f"{name}={value!r}: expected one host name or more, comma separated"
        )
    for host in hosts:
        if not _is_host_pattern(host):
            raise ImproperlyConfigured(
                f"{name}: {host!r} never matches a Host header: expected a host name "
                "(.example.com for it and its subdomains), an IP address or *, with no "
                "scheme, port or path"
            )
    return hosts


def _is_host_pattern(host: str) -> bool:
    """An entry Django's validate_host can match: it compares the Host header's name, its port
    taken off, so an entry with a port (``name:5361``), a scheme or a path matched nothing and
    every request got 400."""
    if host == "*":
        return True
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    return bool(host) and not any(char in host for char in ":/?#@[] \t")


def _bracketed(host: str) -> str:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:  # a name, an IPv4 address, one already bracketed, a pattern
        return host
    return f"[{host}]"


def env_bind_host(name: str, default: str = "127.0.0.1") -> str:
    """The address gunicorn binds: an IP address (IPv6 bracketed, as gunicorn's bind reads
    it: it splits a bare ``::1`` at its colons) or a name this machine resolves, either of
    this machine; blank is ``default`` (loopback). HOST=garbage (or 10.9.9.9, no address of
    this host) passed on to gunicorn gets five bind retries, one a second, then "Can't
    connect" and an exit: nothing names the setting."""
    value = os.environ.get(name, "").strip()
    host = value.removeprefix("[").removesuffix("]")
    if not host:
        return default
    try:
        _bind_any_port(host)
    except (OSError, UnicodeError) as exc:
        raise ImproperlyConfigured(
            f"{name}={value!r}: expected an IP address or a host name of this machine "
            f"({exc}); blank binds 127.0.0.1, 0.0.0.0 every interface"
        ) from None
    return _bracketed(host)


def _bind_any_port(host: str) -> None:
    """Resolve ``host`` and bind its first address on port 0, any free one: the address is
    this machine's, whatever holds the configured port (a server being replaced may)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as probe:
        probe.bind(address)


def env_origins(name: str) -> list[str]:
    """Web origins as a browser's Origin header spells them, ``scheme://host[:port]``, or
    ``*``. They are compared as strings: one with a path or a trailing slash, or no scheme,
    never matched, and every cross-origin call failed in the browser, silently here. So did
    one spelt otherwise than a browser serialises it (``https://App.Example.com``,
    ``HTTPS://...``, ``https://app.example.com:443``): each is written as the browser's."""
    origins = env_list(name, "")
    for origin in origins:
        if origin != "*" and not _is_origin(origin):
            raise ImproperlyConfigured(
                f"{name}: {origin!r} is no origin: expected * or scheme://host[:port] "
                "(e.g. https://app.example.com), with no path or trailing slash"
            )
    return [origin if origin == "*" else _serialized(origin) for origin in origins]


DEFAULT_PORTS = {"http": 80, "https": 443}


def _serialized(origin: str) -> str:
    """``origin`` as a browser sends it (RFC 6454 6.1, the WHATWG URL host): scheme and host
    in lower case, a non-ASCII name as its IDNA (punycode) form, the scheme's default port
    left out."""
    parts = urlsplit(origin)
    host = str(parts.hostname)  # urlsplit lower-cases it and unbrackets an IPv6 address
    if ":" in host:
        host = f"[{host}]"
    elif not host.isascii():
        host = host.encode("idna").decode("ascii")
    port = "" if parts.port in (None, DEFAULT_PORTS[parts.scheme]) else f":{parts.port}"
    return f"{parts.scheme}://{host}{port}"


def env_trusted_origins(name: str) -> list[str]:
    """CSRF_TRUSTED_ORIGINS: origins as ``env_origins`` reads them, a host may start with
    ``*.`` (Django's subdomain wildcard). Django compares them as strings too: with a trailing
    slash, an admin form posted through a proxy that passes another Host is refused (403,
    "Origin checking failed"); without a scheme, Django's system check stops ``migrate``
    alone, as 3 log records, and a pod started with MIGRATE_ON_START=0 would run with it."""
    origins = env_list(name, "")
    for origin in origins:
        if not _is_origin(origin.replace("://*.", "://", 1)):
            raise ImproperlyConfigured(
                f"{name}: {origin!r} is no origin: expected scheme://host[:port] "
                "(e.g. https://liveness.example.com or https://*.example.com), with no path or "
                "trailing slash"
            )
    return [_serialized_trusted(origin) for origin in origins]


def _serialized_trusted(origin: str) -> str:
    """A trusted origin as a browser's Origin header spells it (``_serialized``), a wildcard's
    ``*.`` kept: Django compares the header with it as a string (a wildcard's host in lower
    case, its port too), so ``https://liveness.example.com:443`` or ``HTTPS://Liveness...``
    never matched and every admin form posted through the proxy was refused, 403."""
    wildcard = "://*." in origin
    serialized = _serialized(origin.replace("://*.", "://", 1))
    return serialized.replace("://", "://*.", 1) if wildcard else serialized


def _is_origin(value: str) -> bool:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError for a port that is no number)
    except ValueError:
        return False
    plain = not (parts.path or parts.query or parts.fragment or "@" in parts.netloc)
    if not (parts.scheme in ("http", "https") and parts.hostname and plain):
        return False
    try:
        parts.hostname.encode("idna")  # a name no browser could send (an empty label...)
    except UnicodeError:
        return False
    return True


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(spec: str) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDR networks ("10.0.0.0/8, 192.0.2.7"); ValueError."""
    return tuple(ipaddress.ip_network(item.strip()) for item in spec.split(",") if item.strip())


def env_networks(name: str, default: str = "") -> tuple[Network, ...]:
    value = os.environ.get(name, default)
    try:
        return networks(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={value!r}: {exc}") from None


def trusted_proxies() -> tuple[Network, ...]:
    """TRUSTED_PROXIES, the reverse proxies whose X-Forwarded-For is believed. The count it
    replaces (TRUSTED_PROXY_COUNT) believed the header from any peer; a deployment that still
    sets it must say which proxies it means, or every client behind them would share the
    proxy's address (and its failed-auth throttle)."""
    count = os.environ.get("TRUSTED_PROXY_COUNT", "").strip()
    if count not in ("", "0"):
        raise ImproperlyConfigured(
            f"TRUSTED_PROXY_COUNT={count!r} is no longer read: set TRUSTED_PROXIES to the "
            "proxies' addresses or networks (e.g. 10.0.0.0/8), and unset TRUSTED_PROXY_COUNT"
        )
    return env_networks("TRUSTED_PROXIES")


def env_forwarded_allow_ips(name: str, default: str = "127.0.0.1,::1") -> list[str]:
    """The addresses gunicorn believes scheme headers from (``*``, or addresses and CIDR
    networks, comma separated), read by gunicorn's own rule (its config's
    validate_string_to_addr_list: split as it splits, each item a strict ip_network):
    gunicorn reads the variable itself, before any config file, and stopped on ``bogus`` with
    "Error: 'bogus' does not appear to be an IPv4 or IPv6 network", which names no variable.
    Not by calling gunicorn's: importing gunicorn.config reads WEB_CONCURRENCY with a bare
    int(), a traceback for every manage.py command where facia_site.serve names it."""
    value = os.environ.get(name, default)
    items = [item.strip() for item in value.split(",") if item]
    try:
        for item in items:
            if item != "*":
                ipaddress.ip_network(item)
        return items
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"{name}={value!r}: {exc}; expected * or addresses and CIDR networks, comma "
            "separated (e.g. 127.0.0.1,::1,10.0.0.0/8)"
        ) from None


def env_numbers(name: str) -> dict[str, float]:
    """A JSON object of numbers, e.g. LIVENESS_QUALITY='{"max_yaw": 0.7}'; {} when unset."""
    value = os.environ.get(name) or "{}"
    try:
        parsed = json.loads(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: not JSON: {value!r}") from None
    try:
        if not isinstance(parsed, dict) or any(isinstance(v, bool) for v in parsed.values()):
            raise TypeError
        numbers = {str(k): float(v) for k, v in parsed.items()}
        if not all(math.isfinite(v) for v in numbers.values()):  # JSON's NaN, Infinity
            raise ValueError
        return numbers
    except (TypeError, ValueError):
        raise ImproperlyConfigured(
            f"{name}: expected a JSON object of finite numbers, got {value!r}"
        ) from None


def env_quality(name: str) -> dict[str, float]:
    """Quality gate thresholds (ml.quality), e.g. LIVENESS_QUALITY='{"max_yaw": 0.7}'. A name
    that is no gate's (a typo: max_yawn) started the server, then stopped every worker at
    boot with the name at the end of a traceback."""
    overrides = env_numbers(name)
    if overrides:
        from ml.quality import QualityThresholds  # numpy, OpenCV: only when the setting is used

        known = [field.name for field in fields(QualityThresholds)]
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise ImproperlyConfigured(
                f"{name}: unknown {', '.join(unknown)}; expected some of {', '.join(known)}"
            )
        try:  # a value out of its range started, then refused every selfie (min_luma 300)
            QualityThresholds.from_mapping(overrides)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name}: {exc}") from None
    return overrides


def env_steps(name: str) -> tuple[str, ...]:
    """A head-turn sequence, e.g. CAPTURE_CHALLENGE_STEPS=turn_left,turn_right,look_up
    (ml.headturn.parse_steps' words); () when unset or empty."""
    value = os.environ.get(name, "").strip()
    if not value:
        return ()
    from ml.headturn import parse_steps  # numpy: only when the setting is used

    try:
        return tuple(parse_steps(value))
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={value!r}: {exc}") from None


@dataclass(frozen=True)
class LogSettings:
    format: str  # "json" (one object per line, with the request id) or "text"
    level: str  # a logging level name, upper case
    stream: str = "stdout"  # "stdout" (the service) or "stderr" (manage.py commands)


# FACIA_COMMAND_LOGS, set by manage.py for its own process (and its autoreloader's child): a
# command's log records go to stderr, so that what it writes on stdout is its output alone
# (evaluate --json piped to a file was not JSON: an ml.engine INFO record came first).
def log_stream() -> str:
    """Where log records go: "stderr" in a manage.py command, "stdout" otherwise."""
    return "stderr" if os.environ.get("FACIA_COMMAND_LOGS") == "stderr" else "stdout"


def log_format() -> str:
    """LOG_FORMAT: "json", "text" ("plain" is the same) or "auto" (the default): text when the
    log stream (log_stream: stdout, stderr for manage.py) is a terminal, JSON otherwise; for
    Django, gunicorn and bin/entrypoint (which decides "auto" once, where the terminal is, for
    its steps and gunicorn)."""
    value = env_choice("LOG_FORMAT", "auto", ("auto", "json", "text", "plain"))
    if value == "auto":
        return "text" if _is_terminal(getattr(sys, log_stream())) else "json"
    return "text" if value == "plain" else value


def _is_terminal(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]  # any stream, None: caught
    except (AttributeError, ValueError):  # None, or closed
        return False


def log_settings() -> LogSettings:
    """LOG_FORMAT and LOG_LEVEL, read once for Django's settings and for gunicorn's."""
    level = env_str("LOG_LEVEL", "INFO").strip().upper()
    if level not in logging.getLevelNamesMapping():
        raise ImproperlyConfigured(f"LOG_LEVEL={level!r}: expected DEBUG, INFO, WARNING, ERROR")
    return LogSettings(log_format(), level, log_stream())
