"""Django settings, read from the environment (12-factor)."""

import re
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from facia_site.env import (
    DATABASE_TIMEOUT_DEFAULT_S,
    DATABASE_TIMEOUT_MAX_S,
    POSTGRESQL_UNBOUNDED_CONNECT_S,
    SQLITE_UNBOUNDED_WAIT_S,
    env_bool,
    env_choice,
    env_database_url,
    env_forwarded_allow_ips,
    env_hosts,
    env_int,
    env_networks,
    env_origins,
    env_path,
    env_quality,
    env_seconds,
    env_secret,
    env_steps,
    env_str,
    env_trusted_origins,
    log_settings,
    trusted_proxies,
)
from facia_site.vardir import SECRET_KEY_FILE, read_secret_key, var_dir
from telemetry.logs import logging_config

# The admin subclasses Django's generic classes as their stubs type them (ModelAdmin[Tenant],
# ModelForm[Tenant]): this gives those classes the __class_getitem__ that subscripting needs.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
# Paths only: facia_site.vardir.prepare() creates them (manage.py and gunicorn run it).
VAR_DIR = var_dir()
SECRET_KEY = read_secret_key(VAR_DIR / SECRET_KEY_FILE)
DEBUG = env_bool("DEBUG")
ALLOWED_HOSTS = env_hosts("ALLOWED_HOSTS", "127.0.0.1,localhost")

INSTALLED_APPS = [
    "console.adminconfig.ConsoleAdminConfig",  # django.contrib.admin with the console's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_tasks",
    "django_tasks_db",
    # The layering, bottom first (tests/project/test_layering.py): telemetry, guard, accounts,
    # liveness, calibration, capture, console, facia_site (the commands about the whole site:
    # backup). Which tenant, refusal and counter admins the site serves does not depend on
    # this order: the console registers them, once (tests/console/test_admin_registry.py).
    "telemetry",
    "guard",
    "accounts",
    "liveness",
    "calibration",
    "capture",
    "console",
    "facia_site",
]

MIDDLEWARE = [
    "telemetry.middleware.ReleaseRequestMiddleware",
    "telemetry.middleware.HeadWithoutBodyMiddleware",
    "telemetry.middleware.RequestIdMiddleware",
    "telemetry.middleware.ObservabilityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "guard.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so the first to see a view's exception: a database that does not answer is a 503.
    "liveness.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "facia_site.urls"
WSGI_APPLICATION = "facia_site.wsgi.application"
# /liveness must not be redirected to /liveness/.
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


# Seconds any wait on the database may take before the request answers 503 + Retry-After
# (docs, Configuration); 0: no bound but the connection's (manage.py's default: a migration
# may run for minutes).
# At most a day: PostgreSQL's statement_timeout is an int4 of milliseconds (24.8 days).
DATABASE_TIMEOUT_S = env_int(
    "DATABASE_TIMEOUT_S", DATABASE_TIMEOUT_DEFAULT_S, maximum=DATABASE_TIMEOUT_MAX_S
)


# Seconds between the checks a PostgreSQL backend makes, while a query of ours runs or waits on
# a lock, that its client is still connected (client_connection_check_interval, a per-session
# setting; 0: never). PostgreSQL's default is 0: a worker killed mid-query (gunicorn's timeout)
# leaves its backend waiting behind the lock, holding a connection, until the lock is freed.
DATABASE_CLIENT_CHECK_S = env_int("DATABASE_CLIENT_CHECK_S", 2, maximum=86_400)


def server_settings(timeout_s: int, client_check_s: int) -> str:
    """libpq's ``options``: the settings of each session of ours, in milliseconds; a setting
    turned off (0) is not sent, so both at 0 send none, for a server before PostgreSQL 14
    (no client_connection_check_interval: it refuses the connection) or a pooler that refuses
    startup options."""
    values: dict[str, int] = {}
    if client_check_s:
        values["client_connection_check_interval"] = client_check_s * 1000
    if timeout_s:
        # The server cancels first (the connection stays usable); the client's bound ends the
        # wait on a server that cannot cancel anything because it does not run.
        server_ms = timeout_s * 1000 - 500
        values |= {"statement_timeout": server_ms, "lock_timeout": server_ms}
    return " ".join(f"-c {name}={value}" for name, value in values.items())


def postgresql_options(timeout_s: int, client_check_s: int) -> dict[str, Any]:
    """Bounds on every wait on PostgreSQL (facia_site.postgresql explains which ends what)."""
    options: dict[str, Any] = {
        # libpq's minimum is 2
        "connect_timeout": max(2, timeout_s) if timeout_s else POSTGRESQL_UNBOUNDED_CONNECT_S,
        # A dead peer (host down, cable cut) is noticed on an idle pooled connection too.
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }
    if sent := server_settings(timeout_s, client_check_s):
        options["options"] = sent
    if timeout_s:
        options["tcp_user_timeout"] = timeout_s * 1000
        options["wait_timeout"] = timeout_s
    return options


def database_config() -> dict[str, Any]:
    url = env_database_url("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
    try:
        parsed = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError as exc:  # dj_database_url.ParseError too
        # dj-database-url's own sentence named no variable ("This string is not a valid url"),
        # under a 40-line traceback; the value is not shown (it may hold a password).
        raise ImproperlyConfigured(
            f"DATABASE_URL is not a valid URL ({type(exc).__name__}): quote the special "
            "characters of its parts (a password's @ : / [ as %40 %3A %2F %5B); the value is "
            "not shown: it may hold a password"
        ) from None
    config: dict[str, Any] = dict(parsed)
    if config["ENGINE"] == "django.db.backends.postgresql":
        config["ENGINE"] = "facia_site.postgresql"
        # The URL's own options (?sslmode=require, ?options=...) win over these defaults.
        options = postgresql_options(DATABASE_TIMEOUT_S, DATABASE_CLIENT_CHECK_S)
        config["OPTIONS"] = {**options, **config.get("OPTIONS", {})}
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["ENGINE"] = "facia_site.sqlite3"  # the database file 0600
        config["CONN_MAX_AGE"] = None  # a local file: keep the connection, skip re-opening it
        config["OPTIONS"] = {
            # WAL + busy timeout + BEGIN IMMEDIATE: concurrent gunicorn workers wait, not fail;
            # a lock held longer (a stuck process) answers 503, as a hung PostgreSQL does.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "timeout": DATABASE_TIMEOUT_S or SQLITE_UNBOUNDED_WAIT_S,
            "transaction_mode": "IMMEDIATE",
        }
        # A file, not :memory:, so tests with threads share one database.
        config["TEST"] = {"NAME": str(VAR_DIR / "test_db.sqlite3")}
    return config


DATABASES = {"default": database_config()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# Admin and API docs assets are served by WhiteNoise straight from the installed apps.
WHITENOISE_USE_FINDERS = True

# The one-time hash_id shown in the admin must not travel back in a cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# A ~10 MB image is ~13.4 MB as base64, plus the JSON around it.
LIVENESS_MAX_BODY_BYTES = env_int("LIVENESS_MAX_BODY_BYTES", 16 * 1024 * 1024, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = LIVENESS_MAX_BODY_BYTES

MODEL_SOURCE = env_path("MODEL_SOURCE", BASE_DIR.parent / "shared" / "models")
MODEL_DIR = env_path("MODEL_DIR", VAR_DIR / "models")
# At most 1024, as WEB_CONCURRENCY: far past any CPU this serves on (one thread per core is
# the fastest, docs' Performance page), and 10**20 stopped every worker's boot with OpenVINO's
# pybind traceback (an int32 it cannot hold).
ENGINE_THREADS = env_int("ENGINE_THREADS", 1, minimum=1, maximum=1024)
# f32 (default) keeps scores identical across CPUs; bf16 is faster where the CPU has it; int8
# needs MODEL_DIR/int8 (python -m bench.quantize --build); auto: bf16 where native, else f32.
ENGINE_PRECISION = env_choice("ENGINE_PRECISION", "f32", ("f32", "bf16", "int8", "auto"))
# Quality gate thresholds overriding ml.quality.QualityThresholds, e.g.
# LIVENESS_QUALITY='{"max_yaw": 0.7, "min_face_px": 80}' (JSON in the environment).
LIVENESS_QUALITY = env_quality("LIVENESS_QUALITY")
# Capture sessions (capture/): token lifetime, quality calls per session per second, selfie
# calls per session per minute, and the operator's demo page /capture/demo (off unless
# CAPTURE_DEMO=1; never in production).
SESSION_TTL_S = env_int("SESSION_TTL_S", 300, minimum=1, maximum=86_400)
# At least 1: 0 refused every call (429), a session could never end (0 turns other limits off).
SESSION_QUALITY_PER_S = env_int("SESSION_QUALITY_PER_S", 8, minimum=1)
SESSION_SELFIE_PER_MIN = env_int("SESSION_SELFIE_PER_MIN", 6, minimum=1)
# Token calls (quality, challenge, selfie) a session may make in its life: its own budget, in
# place of the tenant's rate limit (counted there, one token's 8 calls a second would use up a
# tenant's 120 a minute for all its other users).
# The component makes at most 4 a second (pollMs 250 after each call): 1,200 in the default
# SESSION_TTL_S of 300 s, so 1,500 leaves a quarter more.
# At most 1,000,000 (past 4 calls a second for SESSION_TTL_S' longest day, 345,600): the
# budget is compared in SQL, where 10**20 overflows SQLite's int64 (a 500 on every token call).
SESSION_CALL_BUDGET = env_int("SESSION_CALL_BUDGET", 1500, minimum=1, maximum=1_000_000)
SESSION_QUALITY_MAX_BYTES = env_int("SESSION_QUALITY_MAX_BYTES", 1024 * 1024, minimum=1)
CAPTURE_DEMO = env_bool("CAPTURE_DEMO")
# A head_turn tenant's session: challenges a session may start (the first and each retry); and,
# for tests and demos only, a fixed sequence instead of a random one (capture.apps warns at
# start while it is set).
CAPTURE_CHALLENGE_TRIES = env_int("CAPTURE_CHALLENGE_TRIES", 3, minimum=1)
CAPTURE_CHALLENGE_STEPS = env_steps("CAPTURE_CHALLENGE_STEPS")
# Extensions of a step's time limit a session may ask for ("More time", WCAG 2.2.1's "extend at
# least ten times"), across its challenges; each adds Limits.step_s (7 s) to the phase running.
CAPTURE_CHALLENGE_EXTENSIONS = env_int("CAPTURE_CHALLENGE_EXTENSIONS", 10, minimum=0)
# Origins whose pages may call the token endpoints (quality, selfie) cross-origin; "*" = any.
CAPTURE_ALLOWED_ORIGINS = env_origins("CAPTURE_ALLOWED_ORIGINS")

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Facia on-premises liveness API",
    "DESCRIPTION": "Passive face liveness detection, compatible with the Facia on-prem contract.",
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",  # nullable objects as oneOf [ref, null]: 3.0 cannot say it
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No badge from validator.swagger.io (it would send the schema URL out).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "REDOC_DIST": "SIDECAR",
    "ENUM_GENERATE_CHOICE_DESCRIPTION": False,
    # capture.urls' session ids (UUIDs in either case): documented as the uuid format.
    "PATH_CONVERTER_OVERRIDES": {"session_id": {"type": "string", "format": "uuid"}},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "capture.cors.declare_preflights",  # before the headers every answer shares
        "capture.schema.declare",  # HEAD /sessions/{id}, the selfie's required field
        "liveness.schema.postprocess",
    ],
    "ENUM_NAME_OVERRIDES": {
        "RefusalCodeEnum": "ml.quality.REFUSALS",
        "TokenCodeEnum": "capture.serializers.TOKEN_CODES",
        "CaptureEnum": "capture.serializers.CAPTURE_KINDS",
        "ChallengeFailCodeEnum": "capture.serializers.CHALLENGE_CODES",
        "QualityRefusalCodeEnum": "capture.serializers.QUALITY_REFUSALS",
        "RestartRefusalCodeEnum": "capture.serializers.RESTART_REFUSALS",
        "SelfieRefusalCodeEnum": "capture.serializers.SELFIE_REFUSALS",
        "ChallengeInstructionEnum": "capture.serializers.INSTRUCTIONS",
        "ChallengeStateEnum": "capture.serializers.CHALLENGE_STATES",
    },
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "sessionToken": {"type": "http", "scheme": "bearer"},
            "hashIdHeader": {"type": "apiKey", "in": "header", "name": "X-Hash-Id"},
        }
    },
}

# LOG_FORMAT: text on a terminal, JSON lines (with the request id) otherwise, or as set.
_logs = log_settings()
LOG_FORMAT, LOG_LEVEL = _logs.format, _logs.level
LOGGING = logging_config(LOG_FORMAT, LOG_LEVEL, _logs.stream)

# /metrics: readable with `Authorization: Bearer $METRICS_TOKEN`, or without a token from
# these networks (comma separated CIDRs; empty = token only).
METRICS_TOKEN = env_secret("METRICS_TOKEN")
# Parsed here, at start: parsed per request, a typo would answer every scrape 500.
METRICS_ALLOWED_NETWORKS = env_networks("METRICS_ALLOWED_NETWORKS", "127.0.0.1/32,::1/128")
# --- Abuse guards, retention, admin URL, production (TLS proxy) hardening --------------------

WEEK_S = 7 * 86_400
# Failed hash_id attempts allowed per client IP per window before 429 (0 turns it off).
AUTH_FAILURE_LIMIT = env_int("AUTH_FAILURE_LIMIT", 20)
# At most a week (as LOGIN_LOCKOUT_S): 10**20 raised OverflowError (a 500) at the first bad
# hash_id, computing the window's start (guard.throttle.Window).
AUTH_FAILURE_WINDOW_S = env_int("AUTH_FAILURE_WINDOW_S", 60, minimum=1, maximum=WEEK_S)
# gunicorn's own (it reads the variable itself): checked here too, so that a bad one stops the
# start as one record naming it (facia_site.serve checks it before gunicorn starts).
FORWARDED_ALLOW_IPS = env_forwarded_allow_ips("FORWARDED_ALLOW_IPS")
# Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For is believed: only on a
# request whose peer is one, the client is the nearest address in the header that is not one.
TRUSTED_PROXIES = trusted_proxies()
# Connections one source address may hold open per gunicorn worker (facia_site.worker; 0: no
# cap), well below worker_connections so that one client cannot take them all. Behind a
# reverse proxy every client has the proxy's address: raise it there, or 0.
CONNECTIONS_PER_CLIENT = env_int("CONNECTIONS_PER_CLIENT", 32)
# Admin login: failed attempts per account and per client IP before a lockout of one to two
# LOGIN_LOCKOUT_S windows (0 turns a limit off), and password checks running at once per host.
LOGIN_ACCOUNT_FAILURE_LIMIT = env_int("LOGIN_ACCOUNT_FAILURE_LIMIT", 5)
LOGIN_IP_FAILURE_LIMIT = env_int("LOGIN_IP_FAILURE_LIMIT", 20)
# At most a week (a lockout lasts up to two: ADMIN_IDLE_TIMEOUT_S' own longest); 10**20 made
# every admin login a 500 (OverflowError in guard.throttle.Window). At most 1024 concurrent
# checks: each is a lock file listed per login attempt (3,000,000 took 19.6 s and 1 GB).
LOGIN_LOCKOUT_S = env_int("LOGIN_LOCKOUT_S", 900, minimum=1, maximum=WEEK_S)
LOGIN_CONCURRENT_HASHES = env_int("LOGIN_CONCURRENT_HASHES", 1, minimum=1, maximum=1024)
# At most liveness.models.MAX_RETENTION_DAYS (prune_checks refuses more).
LIVENESS_RETENTION_DAYS = env_int("LIVENESS_RETENTION_DAYS", 90, maximum=36_500)
# How long /liveness keeps the answer of a request sent with an Idempotency-Key (a retry within
# it is answered again without a second unit); prune_checks deletes older ones. 24 h as Stripe
# keeps its keys; at most a year.
IDEMPOTENCY_KEY_TTL_S = env_int("IDEMPOTENCY_KEY_TTL_S", 86_400, minimum=1, maximum=31_536_000)
# Uploads are never parsed by /liveness; the admin's calibration zip is kept in memory, never
# spooled to disk, and a file over UPLOAD_MAX_BYTES is dropped (calibration.uploads).
FILE_UPLOAD_HANDLERS = ["calibration.uploads.BoundedMemoryUploadHandler"]
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 64 * 1024 * 1024, minimum=1)
# Background jobs (calibration.jobs): queued in the database, run by the task worker that gunicorn
# starts beside the HTTP workers (facia_site.taskworker). Any queue name: each task worker
# takes the jobs of its own queue, whose uploads it holds in memory.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": []}}
# bin/entrypoint's own two (read there, in sh), checked here with every other value, so that a
# bad one stops the start as one record naming it: MIGRATE_VERBOSITY=9 reached migrate's
# argparse (its usage as 8 ERROR records, exit 2), and MIGRATE_ON_START=false migrated (only
# "0" skipped). Blank is the default, as the script reads it.
MIGRATE_ON_START = env_bool("MIGRATE_ON_START", True)
MIGRATE_VERBOSITY = (
    env_int("MIGRATE_VERBOSITY", 0, 0, 3) if env_str("MIGRATE_VERBOSITY").strip() else 0
)
# bin/healthcheck's (the image's HEALTHCHECK, standard library only), checked here too: a bad
# one let the service start, then made every health check a traceback, the container unhealthy.
HEALTHCHECK_TIMEOUT = env_seconds("HEALTHCHECK_TIMEOUT", 4.0)


# A path segment of the admin's address: RFC 3986's pchar (unreserved, sub-delims, : and @),
# the characters a browser sends as they are. path() reads <slug:x> as a converter (the
# admin's pages then answered 500) and a browser sends ?, # and % as a query, a fragment or an
# escape (a space, < and > percent-encoded, a backslash turned into /), so such an address
# could never be reached.
# path() escapes every other character of its route (re.escape), and reverse() quotes none of
# these, so ops+7f3a9/ or ops:7f3a9/ is served and linked as written.
ADMIN_URL_SEGMENT = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@-]+")


def admin_url(value: str) -> str:
    value = value.strip().strip("/")
    segments = value.split("/")
    if value and not all(
        ADMIN_URL_SEGMENT.fullmatch(segment) and segment.strip(".") for segment in segments
    ):  # an empty segment (a//b), or . and .., which browsers resolve away, never match
        raise ImproperlyConfigured(
            f"ADMIN_URL={value + '/'!r}: expected path segments of letters, digits and "
            "- . _ ~ ! $ & ' ( ) * + , ; = : @ separated by /, e.g. ops-7f3a9/"
        )
    return f"{value}/" if value else "admin/"


ADMIN_URL = admin_url(env_str("ADMIN_URL", "admin/"))
# Where a login with no safe ``next`` leads (Django's default, /accounts/profile/, is no page).
# Django's, refusing the account the history credits commands to (accounts.backends).
AUTHENTICATION_BACKENDS = ["accounts.backends.AccountBackend"]
LOGIN_URL = "admin:login"
LOGIN_REDIRECT_URL = "admin:index"

X_FRAME_OPTIONS = "DENY"
# Every HTML page's Content-Security-Policy (guard.csp; JSON answers carry none). Nothing is
# allowed unless named: scripts and styles only from the service's own files (no inline
# script, style element or attribute anywhere: tests/facia_site/test_csp.py), images also as
# data: URIs (an evaluation's plots), fetch() to the service (the capture component), no
# plugin, no <base>, forms posted only here, no framing (as X-Frame-Options).
SECURE_CSP = {
    "default-src": ["'none'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
# The database keeps a digest of each session key, never the cookie itself (guard.sessions).
SESSION_ENGINE = "guard.sessions"
# An admin login ends after ADMIN_IDLE_TIMEOUT_S without a request (Django's default is two
# weeks, idle or not): 15 minutes by default, the idle limit of PCI DSS v4.0 8.2.8. Each
# request that reads the session moves the expiry on (guard.sessions.SessionStore: one UPDATE
# of the session row per admin page; API calls read no session and write nothing), but a
# passive one (the calibrate page's poll of its jobs, guard.sessions.passive).
# At least a minute: less would sign an operator out while filling in a form; at most
# Django's two weeks.
ADMIN_IDLE_TIMEOUT_S = env_int("ADMIN_IDLE_TIMEOUT_S", 900, minimum=60, maximum=14 * 86_400)
SESSION_COOKIE_AGE = ADMIN_IDLE_TIMEOUT_S
# However active, a login ends ADMIN_LOGIN_MAX_S after it began (12 hours: a working day with
# room, as OWASP's session guidance suggests for high-value applications), so a stolen cookie
# kept alive by a script does not last for ever (a page's own poll is passive and keeps none
# alive: guard.sessions.passive).
ADMIN_LOGIN_MAX_S = env_int("ADMIN_LOGIN_MAX_S", 43_200, minimum=900, maximum=14 * 86_400)
# A form refused by the CSRF check (403): the console's page, not Django's (its inline <style>
# is refused by SECURE_CSP, and it speaks to developers).
CSRF_FAILURE_VIEW = "console.csrf.csrf_failure"
CSRF_TRUSTED_ORIGINS = env_trusted_origins("CSRF_TRUSTED_ORIGINS")
# DJANGO_SECURE=1: served to browsers over HTTPS by a TLS-terminating proxy that sets
# X-Forwarded-Proto. /status_check and /healthz stay reachable over plain HTTP for local
# health checks, and /metrics for Prometheus, which scrapes each instance directly (the proxy
# blocks it): redirected, a scrape would go to https on the instance, which serves no TLS.
if env_bool("DJANGO_SECURE"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^status_check$", r"^healthz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
