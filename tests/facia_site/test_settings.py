"""Settings helpers: the generated secret key file, the typed environment readers."""

import json
import os
import resource
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from facia_site import env
from facia_site.vardir import load_secret_key
from liveness.models import MAX_RETENTION_DAYS

ROOT = Path(__file__).resolve().parents[2]


def test_secret_key_generated_once_with_private_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    path = tmp_path / "secret_key"
    first = load_secret_key(path)
    assert len(first) >= 50
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret_key(path) == first
    assert list(tmp_path.iterdir()) == [path]


def test_secret_key_from_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "from-env")
    assert load_secret_key(tmp_path / "secret_key") == "from-env"
    assert not (tmp_path / "secret_key").exists()


def test_a_blank_secret_key_is_the_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``SECRET_KEY= `` (a space, in an env file) is unset, not a key of one space."""
    monkeypatch.setenv("SECRET_KEY", "  ")
    key = load_secret_key(tmp_path / "secret_key")
    assert len(key) >= 50
    assert (tmp_path / "secret_key").read_text() == key


@pytest.mark.parametrize(
    ("name", "placeholder"), [("SECRET_KEY", "change-me"), ("METRICS_TOKEN", "replace-me")]
)
def test_an_examples_placeholder_stops_the_start(
    tmp_path: Path, name: str, placeholder: str
) -> None:
    """.env.example and deploy/k8s/secret.example.yaml hold these: copied as they are, the
    key signed with a public value and /metrics opened to anyone who sends the token."""
    environ = {**os.environ, "FACIA_VAR_DIR": str(tmp_path), "LOG_FORMAT": "json"}
    environ[name] = placeholder
    done = manage_check(environ)
    assert done.returncode == 1
    [record] = [json.loads(line) for line in done.stderr.splitlines()]
    assert done.stdout == ""  # stdout is a command's output; its log records go to stderr
    assert record["message"].startswith(
        f"manage.py check: ImproperlyConfigured: {name} is still the example's placeholder"
    )


# --- typed environment readers (facia_site.env) ----------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("TRUE", True), (" on ", True), ("0", False), ("", False)]
)
def test_env_bool_reads_the_usual_spellings(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool
) -> None:
    monkeypatch.setenv("FACIA_TEST_FLAG", raw)
    assert env.env_bool("FACIA_TEST_FLAG") is expected


def test_unset_variables_take_their_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACIA_TEST_VALUE", raising=False)
    assert env.env_bool("FACIA_TEST_VALUE", True) is True
    assert env.env_int("FACIA_TEST_VALUE", 7) == 7
    assert env.env_choice("FACIA_TEST_VALUE", "f32", ("f32", "bf16")) == "f32"
    assert env.env_numbers("FACIA_TEST_VALUE") == {}


@pytest.mark.parametrize(
    ("reader", "raw"),
    [
        (lambda: env.env_bool("FACIA_TEST_VALUE"), "ture"),
        (lambda: env.env_int("FACIA_TEST_VALUE", 1), "2O"),
        (lambda: env.env_int("FACIA_TEST_VALUE", 1), "-1"),
        (lambda: env.env_int("FACIA_TEST_VALUE", 1, minimum=1), "0"),
        (lambda: env.env_int("FACIA_TEST_VALUE", 1, maximum=9), "10"),
        (lambda: env.env_choice("FACIA_TEST_VALUE", "f32", ("f32", "bf16")), "fp16"),
        (lambda: env.env_numbers("FACIA_TEST_VALUE"), '{"max_yaw": "wide"}'),
        (lambda: env.env_numbers("FACIA_TEST_VALUE"), "[0.5]"),
        (lambda: env.env_numbers("FACIA_TEST_VALUE"), "{max_yaw: 0.5}"),
    ],
)
def test_junk_is_improperly_configured(
    monkeypatch: pytest.MonkeyPatch, reader: Callable[[], object], raw: str
) -> None:
    monkeypatch.setenv("FACIA_TEST_VALUE", raw)
    with pytest.raises(ImproperlyConfigured, match="FACIA_TEST_VALUE"):
        reader()


def test_trusted_proxies_are_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRUSTED_PROXY_COUNT", raising=False)
    monkeypatch.delenv("TRUSTED_PROXIES", raising=False)
    assert env.trusted_proxies() == ()
    monkeypatch.setenv("TRUSTED_PROXIES", " 10.0.0.0/8, 192.0.2.7 ,::1")
    assert [str(net) for net in env.trusted_proxies()] == ["10.0.0.0/8", "192.0.2.7/32", "::1/128"]
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.1/8")  # host bits set: a typo, not a network
    with pytest.raises(ImproperlyConfigured, match="TRUSTED_PROXIES"):
        env.trusted_proxies()


def test_the_old_proxy_count_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """TRUSTED_PROXY_COUNT=1 believed X-Forwarded-For from any peer; silently ignoring it
    would put every client behind the proxy under one failed-auth throttle."""
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8")
    monkeypatch.setenv("TRUSTED_PROXY_COUNT", "0")
    assert len(env.trusted_proxies()) == 1
    monkeypatch.setenv("TRUSTED_PROXY_COUNT", "1")
    with pytest.raises(ImproperlyConfigured, match="TRUSTED_PROXY_COUNT='1' is no longer read"):
        env.trusted_proxies()


def test_log_settings_are_read_once_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "Plain")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    assert env.log_settings() == env.LogSettings("text", "DEBUG")  # "plain": text, as before
    monkeypatch.delenv("LOG_FORMAT")
    assert env.log_settings().format == "json"  # auto, and pytest's stdout is no terminal
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT"):
        env.log_settings()
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setenv("LOG_LEVEL", "loud")
    with pytest.raises(ImproperlyConfigured, match="LOG_LEVEL"):
        env.log_settings()


def manage_check(
    environ: dict[str, str], preexec_fn: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    """``manage.py check`` in a child process with ``environ``, to its end."""
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=preexec_fn,
    )


def test_a_bad_setting_stops_manage_py(tmp_path: Path) -> None:
    environ = {**os.environ, "AUTH_FAILURE_LIMIT": "twenty", "FACIA_VAR_DIR": str(tmp_path)}
    environ["LOG_FORMAT"] = "json"
    done = manage_check(environ)
    assert done.returncode != 0
    # One log record on stderr, the cause first (facia_site.startup), its traceback inside.
    first = json.loads(done.stderr.splitlines()[0])
    assert first["message"].startswith(
        "manage.py check: ImproperlyConfigured: AUTH_FAILURE_LIMIT='twenty'"
    )


# --- settings create nothing at import; the set-up step does (facia_site.vardir) -------------

IMPORT_SETTINGS = "import django; django.setup(); from django.conf import settings; settings.DEBUG"


def run_python(tmp_path: Path, *args: str, **env_vars: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    environ.update(DJANGO_SETTINGS_MODULE="facia_site.settings", **env_vars)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120
    )


def test_importing_settings_creates_nothing(tmp_path: Path) -> None:
    var = tmp_path / "var"
    done = run_python(tmp_path, "-c", IMPORT_SETTINGS, FACIA_VAR_DIR=str(var), SECRET_KEY="k")
    assert done.returncode == 0, done.stderr
    assert not var.exists()


def test_without_a_key_settings_name_the_set_up_step(tmp_path: Path) -> None:
    var = tmp_path / "var"
    done = run_python(tmp_path, "-c", IMPORT_SETTINGS, FACIA_VAR_DIR=str(var))
    assert done.returncode != 0
    assert "ImproperlyConfigured: No SECRET_KEY and no key file" in done.stderr
    assert "python -m facia_site.vardir" in done.stderr
    assert not var.exists()


def test_a_key_file_others_may_read_is_made_private(tmp_path: Path) -> None:
    """A key restored with cp under umask 022 (0644, in a 0755 directory) was used as it was:
    anyone on the host could sign admin sessions with it. The set-up step makes it 0600 and
    says so; the key itself is kept."""
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    key = var / "secret_key"
    key.write_text("restored-key-0123456789")
    key.chmod(0o644)
    done = run_python(tmp_path, "manage.py", "check", FACIA_VAR_DIR=str(var))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text() == "restored-key-0123456789"
    [record] = [json.loads(line) for line in done.stderr.splitlines()]  # JSON, by default
    assert record["levelname"] == "WARNING"
    assert record["message"] == f"key file {key} was readable by others (644): made 0600"
    again = run_python(tmp_path, "manage.py", "check", FACIA_VAR_DIR=str(var))
    assert again.returncode == 0 and "readable by others" not in again.stderr


def test_manage_py_sets_up_a_fresh_var_dir(tmp_path: Path) -> None:
    var = tmp_path / "var"
    done = run_python(tmp_path, "manage.py", "check", FACIA_VAR_DIR=str(var))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE((var / "secret_key").stat().st_mode) == 0o600
    # the SQLite database, its journal and the models live here too: nobody else's to read
    assert stat.S_IMODE(var.stat().st_mode) & 0o077 == 0
    assert (var / "static").is_dir()
    with_key = run_python(
        tmp_path, "-m", "facia_site.vardir", FACIA_VAR_DIR=str(var), SECRET_KEY="k"
    )
    assert with_key.returncode == 0, with_key.stderr
    assert sorted(p.name for p in var.iterdir()) == ["secret_key", "static"]


@pytest.mark.parametrize("value", ["", "   "])
def test_a_blank_database_url_is_the_embedded_default(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``DATABASE_URL=`` in an env file means unset, not a failed start."""
    monkeypatch.setenv("DATABASE_URL", value)
    assert env.env_database_url("DATABASE_URL", "sqlite:///db") == "sqlite:///db"


@pytest.mark.parametrize(
    "value", ["mysql://facia:s3cret-pw@db/facia", "postgres//facia:s3cret-pw@db/facia", "s3cret-pw"]
)
def test_a_database_url_we_do_not_serve_is_refused_without_its_password(
    value: str, tmp_path: Path
) -> None:
    done = run_python(
        tmp_path, "manage.py", "check", FACIA_VAR_DIR=str(tmp_path), DATABASE_URL=value
    )
    assert done.returncode != 0
    assert "ImproperlyConfigured: DATABASE_URL has " in done.stdout + done.stderr
    assert "s3cret-pw" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "value",
    ["postgres://facia:change-me@db:5432/facia", "postgresql://facia:Replace%2DMe@pg.facia.svc/f"],
)
def test_an_examples_placeholder_password_stops_the_start(value: str, tmp_path: Path) -> None:
    """compose builds DATABASE_URL from .env.example's POSTGRES_PASSWORD=change-me, and the
    database container takes the same public password; deploy/k8s/secret.example.yaml's URL
    holds replace-me. The service started with either."""
    done = run_python(
        tmp_path, "manage.py", "check", FACIA_VAR_DIR=str(tmp_path), DATABASE_URL=value
    )
    said = done.stdout + done.stderr
    assert done.returncode != 0
    assert (
        "ImproperlyConfigured: DATABASE_URL's password is still the example's placeholder" in said
    )
    assert "Traceback" not in said


def test_a_password_that_merely_contains_a_placeholder_is_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for value in ("postgres://facia:change-me-2b8f1c@db/facia", "postgres://postgres@db/facia"):
        monkeypatch.setenv("DATABASE_URL", value)
        assert env.env_database_url("DATABASE_URL", "sqlite:///db") == value


@pytest.mark.parametrize(
    "value", ["postgres://facia:s3cret-pw@[db/facia", "postgres://facia:s3cret-pw@db:port/facia"]
)
def test_a_database_url_that_cannot_be_parsed_is_one_line_naming_it(
    value: str, tmp_path: Path
) -> None:
    """A password with an unquoted "[" (or a port that is no number): dj-database-url's
    ParseError named no variable, under a traceback."""
    done = run_python(
        tmp_path, "manage.py", "check", FACIA_VAR_DIR=str(tmp_path), DATABASE_URL=value
    )
    said = done.stdout + done.stderr
    assert done.returncode != 0
    assert "ImproperlyConfigured: DATABASE_URL is not a valid URL" in said
    assert "Traceback" not in said and "s3cret-pw" not in said


def test_a_postgresql_url_is_served_by_our_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    from facia_site.settings import database_config

    monkeypatch.setenv("DATABASE_URL", " postgres://postgres@127.0.0.1:5432/facia ")
    config = database_config()
    assert config["ENGINE"] == "facia_site.postgresql"
    assert (config["HOST"], config["NAME"]) == ("127.0.0.1", "facia")


def _no_file_may_grow() -> None:
    """In the child: every write to a regular file fails (EFBIG), as on a full disk."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def test_a_var_dir_that_cannot_be_written_is_one_record_naming_it(tmp_path: Path) -> None:
    """Not 'manage.py check: OSError: [Errno 28] No space left on device' (no path), nor a
    secret_key.PID.tmp left behind at every attempt."""
    var = tmp_path / "var"
    environ = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    environ.update(FACIA_VAR_DIR=str(var), LOG_FORMAT="json")
    done = manage_check(environ, _no_file_may_grow)
    assert done.returncode != 0
    first = json.loads(done.stderr.splitlines()[0])
    assert first["message"].startswith(
        f"manage.py check: ImproperlyConfigured: cannot set up {var} (FACIA_VAR_DIR): "
    )
    assert "File too large" in first["message"]
    assert sorted(p.name for p in var.iterdir()) == ["static"]


def test_an_empty_key_file_is_one_record_naming_it(tmp_path: Path) -> None:
    """An empty key file (touched by hand, cut short by a power loss) let manage.py, migrate
    and the server start, and every signed value fail later: 'The SECRET_KEY setting must not
    be empty' on the admin's sessions and on manage.py shell."""
    var = tmp_path / "var"
    (var / "static").mkdir(parents=True)
    (var / "secret_key").write_text("\n")
    (var / "secret_key").chmod(0o600)
    environ = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    environ.update(FACIA_VAR_DIR=str(var), LOG_FORMAT="json")
    done = manage_check(environ)
    assert done.returncode != 0
    first = json.loads(done.stderr.splitlines()[0])
    assert first["message"].startswith(
        f"manage.py check: ImproperlyConfigured: The key file {var / 'secret_key'} is empty: "
    )
    assert (var / "secret_key").read_text() == "\n"  # left for the operator to look at


# --- every setting is checked at start, not at the first request that reads it --------------


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        # A 500 on every new capture session (timedelta OverflowError).
        ("SESSION_TTL_S", "100000000000000000000", "from 1 to 86400"),
        # prune_checks refused it ("--days must be 0 to 36500"), naming no variable.
        ("LIVENESS_RETENTION_DAYS", str(MAX_RETENTION_DAYS + 1), f"to {MAX_RETENTION_DAYS}"),
        # PostgreSQL: "cannot connect to database ... invalid integer value for tcp_user_timeout".
        ("DATABASE_TIMEOUT_S", "2147484", "from 0 to 86400"),
        # PostgreSQL refused every connection: client_connection_check_interval is an int4 of ms.
        ("DATABASE_CLIENT_CHECK_S", "2147484", "from 0 to 86400"),
        # A 500 on every /metrics scrape without a token.
        ("METRICS_ALLOWED_NETWORKS", "127.0.0.1/32,loopback", "does not appear to be"),
        # Every worker failed to boot, the name at the end of a traceback (exit 3).
        ("LIVENESS_QUALITY", '{"max_yawn": 0.7}', "unknown max_yawn; expected some of "),
        # NaN passes every comparison as false: the gate never refused.
        ("LIVENESS_QUALITY", '{"min_face_px": NaN}', "expected a JSON object of finite"),
        # Every live selfie answered 422 too_dark: no face's mean luma reaches 300.
        ("LIVENESS_QUALITY", '{"min_luma": 300}', "min_luma=300: expected 0 to 255"),
        ("LIVENESS_QUALITY", '{"min_luma": 30, "max_luma": 10}', "min_luma=30 must be below"),
        # Every quality call, every selfie answered 429: no capture session could end.
        ("SESSION_QUALITY_PER_S", "0", "expected at least 1"),
        ("SESSION_SELFIE_PER_MIN", "0", "expected at least 1"),
        ("SESSION_CALL_BUDGET", "0", "from 1 to 1000000"),
        # An operator signed out while filling in a form; or, past two weeks, never idle.
        ("ADMIN_IDLE_TIMEOUT_S", "59", "from 60 to 1209600"),
        ("ADMIN_IDLE_TIMEOUT_S", "1209601", "from 60 to 1209600"),
        ("ADMIN_LOGIN_MAX_S", "899", "from 900 to 1209600"),
        # gunicorn's own reading: "Error: 'bogus' does not appear to be an IPv4 or IPv6
        # network", no variable named (manage.py's steps, bin/entrypoint's first, read it here).
        ("FORWARDED_ALLOW_IPS", "bogus", "'bogus' does not appear to be an IPv4 or IPv6"),
        ("FORWARDED_ALLOW_IPS", "127.0.0.1,10.0.0.1/8", "has host bits set"),
        # Compared with the Origin header as strings: never matched, every CORS call failed.
        ("CAPTURE_ALLOWED_ORIGINS", "https://app.example.com/", "'https://app.example.com/' is no"),
        ("CAPTURE_ALLOWED_ORIGINS", "*,app.example.com", "'app.example.com' is no origin"),
        # Django compares the Host's name, its port taken off: never matched, every request 400.
        ("ALLOWED_HOSTS", "liveness.example.com:5361", "never matches a Host header"),
        ("ALLOWED_HOSTS", "localhost,https://x", "'https://x' never matches a Host header"),
        ("ALLOWED_HOSTS", "x/liveness", "with no scheme, port or path"),
        ("ALLOWED_HOSTS", "[::1]:5001", "'[::1]:5001' never matches"),
        # path() read <slug:x> as a converter: the admin answered 500; ? and # never reach it,
        # % is read as an escape, a space, < and > are sent escaped, a backslash as /.
        ("ADMIN_URL", "<slug:x>/", "expected path segments of letters, digits and - . _ ~ !"),
        ("ADMIN_URL", "x?y", "ADMIN_URL='x?y/': expected path segments"),
        ("ADMIN_URL", "ops/../x/", "expected path segments"),
        ("ADMIN_URL", "ops/./x/", "expected path segments"),
        ("ADMIN_URL", "ops//x/", "expected path segments"),
        ("ADMIN_URL", "ops#x/", "expected path segments"),
        ("ADMIN_URL", "ops%2Bx/", "expected path segments"),
        ("ADMIN_URL", "ops x/", "expected path segments"),
        ("ADMIN_URL", "ops\\x/", "expected path segments"),
        ("ADMIN_URL", "ops>x/", "expected path segments"),
        # OverflowError (a 500) at the first bad hash_id, or at every admin login.
        ("AUTH_FAILURE_WINDOW_S", "100000000000000000000", "from 1 to 604800"),
        ("LOGIN_LOCKOUT_S", "100000000000000000000", "from 1 to 604800"),
        # Every worker failed to boot, OpenVINO's pybind traceback.
        ("ENGINE_THREADS", "100000000000000000000", "from 1 to 1024"),
        # A 3,000,000-entry list per login attempt: 19.6 s and 1 GB.
        ("LOGIN_CONCURRENT_HASHES", "3000000", "from 1 to 1024"),
        # Compared in SQL: past SQLite's int64, a 500 on every token call.
        ("SESSION_CALL_BUDGET", "100000000000000000000", "from 1 to 1000000"),
    ],
)
def test_a_setting_that_would_fail_later_stops_the_start(
    tmp_path: Path, name: str, value: str, expected: str
) -> None:
    done = run_python(tmp_path, "-c", IMPORT_SETTINGS, SECRET_KEY="k", **{name: value})
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"django.core.exceptions.ImproperlyConfigured: {name}"), last
    assert expected in last


def test_origins_as_browsers_send_them_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    origins = " https://app.example.com, http://127.0.0.1:8080 ,https://[::1]:8443,*"
    monkeypatch.setenv("CAPTURE_ALLOWED_ORIGINS", origins)
    assert env.env_origins("CAPTURE_ALLOWED_ORIGINS") == [
        "https://app.example.com",
        "http://127.0.0.1:8080",
        "https://[::1]:8443",
        "*",
    ]
    for bad in ("https://app.example.com:http", "https://user@app.example.com", "ftp://a.b"):
        monkeypatch.setenv("CAPTURE_ALLOWED_ORIGINS", bad)
        with pytest.raises(ImproperlyConfigured, match="is no origin"):
            env.env_origins("CAPTURE_ALLOWED_ORIGINS")


def test_trusted_origins_are_written_as_browsers_send_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Django compares CSRF_TRUSTED_ORIGINS with the Origin header as strings: these spellings
    never matched, and every admin form posted through the proxy was refused 403."""
    monkeypatch.setenv(
        "CSRF_TRUSTED_ORIGINS",
        "https://liveness.example.com:443, HTTPS://Liveness.Example.com,"
        "https://*.Example.COM:443,http://*.example.com:8080,https://[::1]:8443",
    )
    assert env.env_trusted_origins("CSRF_TRUSTED_ORIGINS") == [
        "https://liveness.example.com",
        "https://liveness.example.com",
        "https://*.example.com",
        "http://*.example.com:8080",
        "https://[::1]:8443",
    ]


@pytest.mark.parametrize(
    "hosts", [".example.com", "*", "::1,[fd00::5]", "127.0.0.1,localhost,liveness"]
)
def test_host_patterns_django_can_match_are_taken(
    monkeypatch: pytest.MonkeyPatch, hosts: str
) -> None:
    monkeypatch.setenv("ALLOWED_HOSTS", hosts)
    assert env.env_hosts("ALLOWED_HOSTS", "")


@pytest.mark.parametrize(
    ("key", "refused"),
    [("abc", True), ("a" * 60, True), ("django-insecure-" + "x1y2z3" * 10, True)],
)
def test_a_weak_secret_key_stops_a_secure_start(tmp_path: Path, key: str, refused: bool) -> None:
    """Django's W009 rule, which only `check --deploy` ran, as a warning: DJANGO_SECURE=1
    SECRET_KEY=abc signed admin sessions with a key anyone could guess."""
    done = run_python(
        tmp_path,
        "-c",
        IMPORT_SETTINGS,
        FACIA_VAR_DIR=str(tmp_path),
        DJANGO_SECURE="1",
        SECRET_KEY=key,
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "django.core.exceptions.ImproperlyConfigured: SECRET_KEY is too weak for DJANGO_SECURE=1"
    ), last


def test_a_strong_or_generated_key_starts_secure(tmp_path: Path) -> None:
    import secrets

    strong = run_python(
        tmp_path,
        "-c",
        IMPORT_SETTINGS,
        FACIA_VAR_DIR=str(tmp_path),
        DJANGO_SECURE="1",
        SECRET_KEY=secrets.token_urlsafe(50),
    )
    assert strong.returncode == 0, strong.stderr
    code = f"from facia_site.vardir import prepare; prepare(); {IMPORT_SETTINGS}"
    generated = run_python(tmp_path, "-c", code, FACIA_VAR_DIR=str(tmp_path), DJANGO_SECURE="1")
    assert generated.returncode == 0, generated.stderr
    weak = run_python(tmp_path, "-c", IMPORT_SETTINGS, FACIA_VAR_DIR=str(tmp_path), SECRET_KEY="k")
    assert weak.returncode == 0, weak.stderr  # without DJANGO_SECURE: a development key


@pytest.mark.parametrize("name", ["MODEL_DIR", "MODEL_SOURCE", "VAR_DIR"])
def test_a_blank_path_is_its_default(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``MODEL_DIR=`` in an env file is the default, not the current directory, where
    install_models would write the converted models into the repository (or the image's
    root); ``FACIA_VAR_DIR=`` likewise, where the key file and the database would go."""
    code = f"{IMPORT_SETTINGS}; print(settings.{name})"
    variable = "FACIA_VAR_DIR" if name == "VAR_DIR" else name
    monkeypatch.delenv(variable, raising=False)
    default = run_python(tmp_path, "-c", code, SECRET_KEY="k")
    blank = run_python(tmp_path, "-c", code, SECRET_KEY="k", **{variable: " "})
    assert blank.returncode == 0, blank.stderr
    assert blank.stdout == default.stdout
    assert blank.stdout.strip() not in ("", ".")


def test_a_bad_setting_is_one_line_on_a_terminal_too(tmp_path: Path) -> None:
    """The operator's mistake needs no traceback: it was ~50 lines of Django's settings import
    after the line naming the variable (LOG_FORMAT=text, as `make serve` in a shell)."""
    environ = {**os.environ, "AUTH_FAILURE_LIMIT": "twenty", "FACIA_VAR_DIR": str(tmp_path)}
    environ["LOG_FORMAT"] = "text"
    done = manage_check(environ)
    assert done.returncode == 1
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1, lines[:3]
    assert " ERROR " in lines[0]
    assert lines[0].endswith(
        "manage.py check: ImproperlyConfigured: AUTH_FAILURE_LIMIT='twenty': "
        "expected a whole number"
    )


@pytest.mark.parametrize(
    "environment",
    [
        {},
        {"FACIA_VAR_DIR": "/srv/facia"},
        {"FACIA_VAR_DIR": " "},
        {"FACIA_VAR_DIR": "/srv/facia", "MODEL_DIR": "/srv/models"},
    ],
)
def test_the_engines_own_commands_read_the_services_model_dir(
    tmp_path: Path, environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``python -m ml.fit_score_maps``, the benchmarks and the engine's tests read without
    Django (ml.install.default_model_dir) is settings.MODEL_DIR: they read MODEL_DIR or var/models
    of the checkout, so with FACIA_VAR_DIR set they used a second install, not the service's."""
    for name in ("MODEL_DIR", "FACIA_VAR_DIR"):
        monkeypatch.delenv(name, raising=False)
    code = (
        f"{IMPORT_SETTINGS}; from ml.install import default_model_dir; "
        "print(settings.MODEL_DIR, default_model_dir())"
    )
    done = run_python(tmp_path, "-c", code, SECRET_KEY="k", **environment)
    assert done.returncode == 0, done.stderr
    service, engine = done.stdout.split()
    assert engine == service


# --- ADMIN_URL may not take over, or hide under, a page the site serves ---------------------


@pytest.mark.parametrize(
    ("admin_url", "taken"),
    [
        # /api/schema/, /api/docs/, /api/redoc/ answered 302 to /api/login/.
        ("api/", "/api/docs/, /api/redoc/, /api/schema/"),
        ("api/schema", "/api/schema/"),
        # WhiteNoise serves STATIC_URL before the URLconf: the admin's own styles were hidden.
        ("static/", "/static/..."),
        ("/static/admin/", "/static/..."),
        # The worker reads every /sessions/... call as an admin page (upload limits).
        ("sessions/", "/sessions, /sessions/..."),
        ("capture/", "/capture/demo, /capture/demo/..."),
        ("metrics", "/metrics"),
        ("liveness/", "/liveness"),
    ],
)
def test_an_admin_url_over_a_served_path_stops_the_start(
    tmp_path: Path, admin_url: str, taken: str
) -> None:
    environ = {**os.environ, "ADMIN_URL": admin_url, "FACIA_VAR_DIR": str(tmp_path)}
    environ["LOG_FORMAT"] = "text"
    done = manage_check(environ)
    assert done.returncode == 1
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1, lines[:3]
    shown = admin_url.strip("/") + "/"
    assert lines[0].endswith(
        f"manage.py check: ImproperlyConfigured: ADMIN_URL={shown!r}: overlaps {taken}, "
        "which the service serves; choose a path of its own, e.g. ops-7f3a9/"
    )


@pytest.mark.parametrize(
    "admin_url", ["ops-7f3a9/", "api-admin/", "livenessx", "api/docsx/", "/ops/x.y~_-1/"]
)
def test_an_admin_url_of_its_own_is_taken(tmp_path: Path, admin_url: str) -> None:
    environ = {**os.environ, "ADMIN_URL": admin_url, "FACIA_VAR_DIR": str(tmp_path)}
    done = manage_check(environ)
    assert done.returncode == 0, done.stdout + done.stderr


# Each character of RFC 3986's pchar (sub-delims, : and @ beyond the unreserved ones) as
# deployments had set it: the admin is served, and linked, at the address as written.
ADMIN_LOGIN_PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
from django.urls import reverse
client = Client(HTTP_HOST="localhost")
index = client.get(f"/{settings.ADMIN_URL}")
login = client.get(f"/{settings.ADMIN_URL}login/")
print(json.dumps([reverse("admin:login"), index.status_code, index.url, login.status_code]))
"""


@pytest.mark.parametrize(
    "admin_url",
    ["ops+7f3a9/", "ops@7f3a9/", "ops!admin/", "ops:7f3a9/", "o(p)s'*,;=$&/x~y/"],
)
def test_an_admin_url_of_rfc_3986_path_characters_serves_its_login(
    tmp_path: Path, admin_url: str
) -> None:
    done = run_python(
        tmp_path,
        "-c",
        ADMIN_LOGIN_PROBE,
        SECRET_KEY="k",
        ADMIN_URL=admin_url,
        FACIA_VAR_DIR=str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    login_path, index_status, index_to, login_status = json.loads(done.stdout.splitlines()[-1])
    assert login_path == f"/{admin_url}login/"
    assert (index_status, login_status) == (302, 200)
    assert index_to.startswith(f"/{admin_url}login/?next=/")


@pytest.mark.parametrize(
    "value",
    ["*", "127.0.0.1,::1", " 10.0.0.0/8 , 192.0.2.7", "", "1.2.3.4,,::1", "bogus", "10.0.0.1/8"],
)
def test_forwarded_allow_ips_is_read_as_gunicorn_reads_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """What the start accepts, gunicorn accepts, as the same list; what it refuses, gunicorn
    would have stopped on without naming the variable."""
    from gunicorn.config import validate_string_to_addr_list

    monkeypatch.setenv("FORWARDED_ALLOW_IPS", value)
    try:
        expected = validate_string_to_addr_list(value)
    except ValueError:
        with pytest.raises(ImproperlyConfigured, match="^FORWARDED_ALLOW_IPS="):
            env.env_forwarded_allow_ips("FORWARDED_ALLOW_IPS")
    else:
        assert env.env_forwarded_allow_ips("FORWARDED_ALLOW_IPS") == expected
