"""`make run`: the service under gunicorn, with everything it needs for local use.

* DATA_DIR (default ./var) holds the SQLite file, the private Redis's append-only file and a
  generated SECRET_KEY and JWT_SIGNING_KEY, so counts and logins survive a restart.
* Without REDIS_URL, a private Redis-compatible server (incrementific/redis_server.py) runs
  with AOF `appendfsync always` and stops when this does.
* Migrations and collectstatic run first; then gunicorn with gunicorn.conf.py.
"""

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from incrementific.redis_server import RedisServer

BASE_DIR = Path(__file__).resolve().parent.parent


def _secret(data_dir: Path, name: str) -> str:
    path = data_dir / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def _stop_leftover(redis_dir: Path) -> None:
    """Stop a server that an earlier, killed `make run` left on this data: two servers must
    never append to one AOF."""
    pidfile = redis_dir / "server.pid"
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text() or 0)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if str(redis_dir).encode() in cmdline:
        os.kill(pid, signal.SIGTERM)
        for _ in range(200):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.05)


def main() -> int:
    env = os.environ.copy()
    data_dir = Path(env.get("DATA_DIR") or BASE_DIR / "var").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env["DATA_DIR"] = str(data_dir)
    env.setdefault("SECRET_KEY", _secret(data_dir, "secret_key"))
    env.setdefault("JWT_SIGNING_KEY", _secret(data_dir, "jwt_signing_key"))
    # make run serves plain http on localhost; a secure-only cookie would never come back.
    env.setdefault("SECURE_COOKIES", "False")

    redis = None
    if not env.get("REDIS_URL"):
        redis_dir = data_dir / "redis"
        _stop_leftover(redis_dir)
        redis = RedisServer(redis_dir, appendfsync=env.get("REDIS_APPENDFSYNC", "always"), new_session=True)
        redis.start()
        (redis_dir / "server.pid").write_text(str(redis.process.pid))
        env["REDIS_URL"] = redis.url
        print(f"incrementific: private Redis on {redis.url}, data in {redis_dir}", flush=True)

    # Ctrl-C, and a TERM from whatever supervises `make run`, both stop gunicorn and then Redis
    # (a shell that starts us in the background hands down SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)

    manage = [sys.executable, str(BASE_DIR / "manage.py")]
    gunicorn = None
    try:
        subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True)
        subprocess.run([*manage, "collectstatic", "--noinput", "-v0"], env=env, check=True)
        port = env.get("PORT", "8000")
        print(
            f"incrementific: serving on http://127.0.0.1:{port}/ (Ctrl-C stops it); "
            "for an admin account at /admin/, run `make superuser` in another terminal",
            flush=True,
        )
        gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(BASE_DIR / "gunicorn.conf.py"), "incrementific.wsgi"],
            env=env,
            cwd=BASE_DIR,
        )
        return gunicorn.wait()
    except KeyboardInterrupt:
        if gunicorn is not None:
            gunicorn.send_signal(signal.SIGTERM)
            gunicorn.wait()
        return 0
    finally:
        if redis is not None:
            redis.stop()
            print("incrementific: private Redis stopped", flush=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
