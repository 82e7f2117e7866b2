import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
BASE_ENV = {"PATH": os.environ["PATH"], "DATA_DIR": os.environ["DATA_DIR"]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_settings(**env) -> subprocess.CompletedProcess:
    code = "import incrementific.settings as s; print(s.DEBUG, s.COUNTER_BLOCK_SIZE, s.ALLOWED_HOSTS)"
    return subprocess.run(
        [sys.executable, "-c", code], env={**BASE_ENV, **env}, capture_output=True, text=True, timeout=60
    )


def manage(*args: str, **env) -> subprocess.CompletedProcess:
    return run("manage.py", *args, **env)


LOCAL = "`make run` and the other make targets make one under DATA_DIR; or set DEBUG=true for local work"


def test_debug_is_off_and_a_secret_key_is_required_by_default():
    r = load_settings()
    assert r.returncode == 1
    assert f"SettingError: SECRET_KEY is required when DEBUG is off: {LOCAL}" in r.stderr


def test_manage_py_with_no_environment_at_all_says_what_to_do_in_one_line():
    r = run("manage.py", "migrate", DATA_DIR=None)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"manage.py: SECRET_KEY is required when DEBUG is off: {LOCAL}\n"


KEYS = {"SECRET_KEY": "x" * 50, "JWT_SIGNING_KEY": "y" * 50}


def test_a_jwt_signing_key_is_required_too():
    r = manage("check", SECRET_KEY="x" * 50)
    assert (r.returncode, r.stderr) == (2, f"manage.py: JWT_SIGNING_KEY is required when DEBUG is off: {LOCAL}\n")


def test_with_its_keys_it_loads_safe_defaults():
    r = load_settings(**KEYS)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False 1000 ['localhost', '127.0.0.1']"


@pytest.mark.parametrize("value", ["True", "true", "TRUE", "1", "yes", "Yes", "on", "ON", " true "])
def test_a_yes_is_written_any_of_the_usual_ways(value):
    r = load_settings(DEBUG=value)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == "True"


@pytest.mark.parametrize("value", ["False", "false", "0", "no", "NO", "off", "Off"])
def test_a_no_is_written_any_of_the_usual_ways(value):
    r = load_settings(**KEYS, DEBUG=value)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == "False"


BOOLEAN = "is not a boolean: use 1, true, yes or on for yes, 0, false, no or off for no (any case)"


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("DEBUG", "maybe", f"DEBUG='maybe' {BOOLEAN}"),
        ("DEBUG", "2", f"DEBUG='2' {BOOLEAN}"),
        ("SECURE_COOKIES", "yes please", f"SECURE_COOKIES='yes please' {BOOLEAN}"),
        # read (and refused) with DEBUG on too, though only applied without it
        ("SECURE_HSTS_PRELOAD", "nope", f"SECURE_HSTS_PRELOAD='nope' {BOOLEAN}"),
        ("COUNTER_BLOCK_SIZE", "many", "COUNTER_BLOCK_SIZE='many' is not a whole number"),
        ("COUNTER_BLOCK_SIZE", "0", "COUNTER_BLOCK_SIZE='0' is too small: it must be at least 1"),
        (
            "CORS_ALLOWED_ORIGINS",
            "https://a.example, a.example/app",
            "CORS_ALLOWED_ORIGINS: 'a.example/app' is not an origin: write scheme://host[:port] with no path "
            "(https://app.example.com), or * alone for any origin",
        ),
        (
            "REDIS_SENTINELS",
            "10.0.0.5:26379,sentinel-b",
            "REDIS_SENTINELS: 'sentinel-b' is not host:port (write 10.0.0.5:26379, or [::1]:26379)",
        ),
        (
            "REDIS_SENTINELS",
            "10.0.0.5:99999",
            "REDIS_SENTINELS: '10.0.0.5:99999' is not host:port (write 10.0.0.5:26379, or [::1]:26379)",
        ),
        (
            "REDIS_CLUSTER_NODES",
            "10.0.0.5:7000,10.0.0.6",
            "REDIS_CLUSTER_NODES: '10.0.0.6' is not host:port (write 10.0.0.5:26379, or [::1]:26379)",
        ),
        (
            "OIDC_CLIENT_ID",
            "incrementific",
            "OIDC_CLIENT_ID is set but OIDC_ISSUER is not: set the provider's issuer URL",
        ),
        (
            "OIDC_API_AUDIENCE",
            "https://a",
            "OIDC_API_AUDIENCE is set but OIDC_ISSUER is not: set the provider's issuer URL",
        ),
        (
            "OIDC_ISSUER",
            "id.example.com",
            "OIDC_ISSUER='id.example.com' is not a URL: write the provider's issuer, https://...",
        ),
        ("METRICS_FLUSH_SECONDS", "0", "METRICS_FLUSH_SECONDS='0' is too small: it must be at least 1"),
        ("HISTORY_MOVE_SECONDS", "soon", "HISTORY_MOVE_SECONDS='soon' is not a whole number"),
    ],
)
def test_a_setting_nobody_can_read_is_one_line_at_start(name, value, message):
    r = manage("check", **KEYS, **{"DEBUG": "on" if name.startswith("SECURE_HSTS") else "off", name: value})
    assert (r.returncode, r.stdout, r.stderr) == (2, "", f"manage.py: {message}\n")


def test_two_redis_topologies_at_once_is_one_line_at_start():
    r = manage("check", **KEYS, REDIS_CLUSTER_NODES="10.0.0.5:7000", REDIS_SENTINELS="10.0.0.5:26379")
    message = "REDIS_CLUSTER_NODES and REDIS_SENTINELS are both set: one topology at a time, unset one"
    assert (r.returncode, r.stdout, r.stderr) == (2, "", f"manage.py: {message}\n")


def test_single_sign_on_needs_the_client_secret_with_the_client_id():
    r = manage("check", **KEYS, OIDC_ISSUER="https://id.example.com", OIDC_CLIENT_ID="incrementific")
    message = "OIDC_CLIENT_ID is set but OIDC_CLIENT_SECRET is not: the log-in needs both"
    assert (r.returncode, r.stdout, r.stderr) == (2, "", f"manage.py: {message}\n")


def test_a_cluster_has_database_0_only():
    r = manage("check", **KEYS, REDIS_CLUSTER_NODES="10.0.0.5:7000", REDIS_URL="redis://:pw@ignored:6379/3")
    message = "REDIS_URL names database 3: a Redis Cluster has database 0 only"
    assert (r.returncode, r.stdout, r.stderr) == (2, "", f"manage.py: {message}\n")


def run(*command: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *command],
        env={key: value for key, value in {**BASE_ENV, **env}.items() if value is not None},
        capture_output=True,
        text=True,
        cwd=BASE_DIR,
        timeout=60,
    )


def test_gunicorn_refuses_a_bad_setting_in_one_line_before_it_binds(tmp_path):
    gunicorn = ("-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{free_port()}", "incrementific.wsgi")
    r = run(*gunicorn, **KEYS, DATA_DIR=str(tmp_path), ACCESS_LOG="sometimes")
    assert (r.returncode, r.stdout, r.stderr) == (2, "", f"incrementific: ACCESS_LOG='sometimes' {BOOLEAN}\n")
    r = run(*gunicorn, DATA_DIR=str(tmp_path), DEBUG="maybe")
    assert (r.returncode, r.stdout, r.stderr) == (2, "", f"incrementific: DEBUG='maybe' {BOOLEAN}\n")


def test_make_run_refuses_a_bad_setting_before_it_starts_anything(tmp_path):
    r = run("-m", "incrementific.serve", DATA_DIR=str(tmp_path), DEBUG="maybe")
    assert (r.returncode, r.stdout, r.stderr) == (2, "", f"incrementific: DEBUG='maybe' {BOOLEAN}\n")
    assert not (tmp_path / "redis").exists()  # no Redis was started
    r = run("-m", "incrementific.serve", DATA_DIR=str(tmp_path), REDIS_APPENDFSYNC="sometimes")
    message = "incrementific: REDIS_APPENDFSYNC='sometimes' is not one of always, everysec, no\n"
    assert (r.returncode, r.stdout, r.stderr) == (2, "", message)
    assert not (tmp_path / "redis").exists()


def test_make_superuser_needs_no_terminal_and_no_redis(tmp_path):
    """With the DJANGO_SUPERUSER_* variables, into make run's own DATA_DIR database, and without
    a word about the Redis on 127.0.0.1:6379, which make run does not use."""
    env = {
        **BASE_ENV,
        "DATA_DIR": str(tmp_path),
        "DJANGO_SUPERUSER_USERNAME": "root",
        "DJANGO_SUPERUSER_PASSWORD": "correct-horse-battery",
        "DJANGO_SUPERUSER_EMAIL": "root@example.com",
    }
    make = ["make", "--no-print-directory", "-s"]
    migrated = subprocess.run([*make, "migrate"], env=env, capture_output=True, text=True, cwd=BASE_DIR, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    r = subprocess.run([*make, "superuser"], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       cwd=BASE_DIR, timeout=120)  # fmt: skip
    assert (r.returncode, r.stdout, r.stderr) == (0, "Superuser created successfully.\n", "")
    import sqlite3

    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        rows = db.execute("select username, email, is_superuser, is_staff from auth_user").fetchall()
    assert rows == [("root", "root@example.com", 1, 1)]


def test_debug_on_runs_without_a_secret_key():
    r = load_settings(DEBUG="True", COUNTER_BLOCK_SIZE="10", ALLOWED_HOSTS="a.example, b.example")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True 10 ['a.example', 'b.example']"


def test_the_deploy_checks_pass_with_production_settings(private_redis, tmp_path):
    """`manage.py check --deploy --fail-level WARNING` with DEBUG off and the production variables
    set, against a Redis configured as README.md says (AOF, appendfsync always, noeviction)."""
    env = {
        **BASE_ENV,
        "SECRET_KEY": "k" * 20 + "-production-like-secret-key-of-fifty-characters",
        "JWT_SIGNING_KEY": "j" * 64,
        "ALLOWED_HOSTS": "counters.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://counters.example.com",
        "DATA_DIR": str(tmp_path),
        "REDIS_URL": private_redis.url,
        "SECURE_SSL_REDIRECT": "True",
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "True",
        "SECURE_HSTS_PRELOAD": "True",
        "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO",
    }
    command = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"]
    r = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=BASE_DIR)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        f"Counters on a single Redis server at 127.0.0.1:{private_redis.port}, not fenced "
        "(README, 'Redis in production').",
        "System check identified no issues (0 silenced).",
    ]
    # and the same without the HSTS settings is not silently fine
    r = subprocess.run(command, env={**env, "SECURE_HSTS_SECONDS": "0"}, capture_output=True, text=True, cwd=BASE_DIR)
    assert r.returncode == 1
    assert "security.W004" in r.stderr
