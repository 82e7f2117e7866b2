"""The environment of a local install: what `make run` serves with, and what `make migrate` and
`make superuser` run manage.py with, so that all three use one DATA_DIR, one database and one
pair of generated keys.

    python -m incrementific.local createsuperuser --noinput
"""

import os
import secrets
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def _secret(data_dir: Path, name: str) -> str:
    path = data_dir / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def environment(base: dict[str, str]) -> dict[str, str]:
    """`base` (the caller's environment) with DATA_DIR made absolute and created, and the keys
    that DEBUG-off settings require taken from it (generated there the first time)."""
    env = dict(base)
    data_dir = Path(env.get("DATA_DIR") or BASE_DIR / "var").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env["DATA_DIR"] = str(data_dir)
    env.setdefault("SECRET_KEY", _secret(data_dir, "secret_key"))
    env.setdefault("JWT_SIGNING_KEY", _secret(data_dir, "jwt_signing_key"))
    # make run serves plain http on localhost; a secure-only cookie would never come back.
    env.setdefault("SECURE_COOKIES", "False")
    # The prototype's front end calls /v1 from an origin of its own, as it did API Gateway.
    env.setdefault("CORS_ALLOWED_ORIGINS", "*")
    return env


def main(argv: list[str]) -> None:
    env = environment(os.environ)
    os.execve(sys.executable, [sys.executable, str(BASE_DIR / "manage.py"), *argv], env)


if __name__ == "__main__":
    main(sys.argv[1:])
