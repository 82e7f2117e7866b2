import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
BASE_ENV = {"PATH": os.environ["PATH"], "DATA_DIR": os.environ["DATA_DIR"]}


def load_settings(**env) -> subprocess.CompletedProcess:
    code = "import incrementific.settings as s; print(s.DEBUG, s.COUNTER_BLOCK_SIZE, s.ALLOWED_HOSTS)"
    return subprocess.run(
        [sys.executable, "-c", code], env={**BASE_ENV, **env}, capture_output=True, text=True, timeout=60
    )


def test_debug_is_off_and_a_secret_key_is_required_by_default():
    r = load_settings()
    assert r.returncode == 1
    assert "ImproperlyConfigured: SECRET_KEY is required when DEBUG is off" in r.stderr


KEYS = {"SECRET_KEY": "x" * 50, "JWT_SIGNING_KEY": "y" * 50}


def test_a_jwt_signing_key_is_required_too():
    r = load_settings(SECRET_KEY="x" * 50)
    assert r.returncode == 1
    assert "ImproperlyConfigured: JWT_SIGNING_KEY is required when DEBUG is off" in r.stderr


def test_with_its_keys_it_loads_safe_defaults():
    r = load_settings(**KEYS)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False 1000 ['localhost', '127.0.0.1']"


@pytest.mark.parametrize("name, value", [("DEBUG", "yes"), ("DEBUG", "1"), ("COUNTER_BLOCK_SIZE", "many")])
def test_a_typo_in_a_setting_fails_at_start(name, value):
    r = load_settings(**KEYS, **{name: value})
    assert r.returncode == 1
    assert f"ImproperlyConfigured: {name} must be" in r.stderr


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
    assert r.stdout.strip() == "System check identified no issues (0 silenced)."
    # and the same without the HSTS settings is not silently fine
    r = subprocess.run(command, env={**env, "SECURE_HSTS_SECONDS": "0"}, capture_output=True, text=True, cwd=BASE_DIR)
    assert r.returncode == 1
    assert "security.W004" in r.stderr
