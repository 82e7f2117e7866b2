"""`make run`: the service under gunicorn, with everything it needs for local use.

* DATA_DIR (default ./var) holds the SQLite file, the private Redis's append-only file and a
  generated SECRET_KEY and JWT_SIGNING_KEY (incrementific/local.py), so counts and logins
  survive a restart.
* One `make run` a DATA_DIR: it holds an exclusive lock on DATA_DIR/serve.lock for its whole
  life, and so does its private Redis, which inherits the lock. Two servers appending to one
  AOF would hand out every value twice, so a second `make run` on the same folder refuses to
  start, and a Redis left running by a launcher that was killed with -9 is found and stopped
  before a new one starts (see `DataDir`).
* Without REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES, a private Redis-compatible server
  (incrementific/redis_server.py) runs with AOF `appendfsync always` and stops when this does.
* Settings are read first (a bad value is one line, before anything starts); then migrations and
  collectstatic; then gunicorn with gunicorn.conf.py.
"""

import fcntl
import json
import os
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from incrementific import local
from incrementific.env import envchoice, exit_on_bad_setting
from incrementific.redis_server import RedisServer

BASE_DIR = local.BASE_DIR
PROGRAM = "incrementific"
# How long a leftover server gets to stop after a TERM (it flushes its AOF first).
STOP_SECONDS = 10


class Refused(Exception):
    """`make run` will not start: the one line that says why and what to do."""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _is_launcher(pid: int) -> bool:
    try:
        return b"incrementific.serve" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


class DataDir:
    """The lock on a DATA_DIR, and the record of the private Redis that serves from it.

    The lock is an flock on DATA_DIR/serve.lock, which holds the launcher's pid. The private Redis
    inherits the locked descriptor, so the lock is free only when neither the launcher nor its
    Redis is alive. Found taken:

    * by a live launcher: refuse, naming its pid;
    * with its launcher dead: its Redis was orphaned (a `kill -9` of the launcher's process
      group). That server is recognised for certain before it is stopped: the pid in
      redis/server.json must be the `process_id` that the server answering on the recorded port
      reports, and that server's `dir` must be this folder's redis/. Never by name. If it cannot
      be recognised or does not stop, refuse.
    """

    def __init__(self, path: Path):
        self.path = path
        self.redis_dir = path / "redis"
        self.record = self.redis_dir / "server.json"
        self._lock = None

    def acquire(self) -> None:
        self._lock = open(self.path / "serve.lock", "a+")  # held, and locked, for the whole run
        if not self._try_lock():
            holder = self._holder()
            if holder and _is_launcher(holder):
                raise Refused(
                    f"DATA_DIR {self.path} is in use by another `make run` (pid {holder}); for a second "
                    f"instance give it a folder of its own: DATA_DIR=./var2 PORT=8001 make run"
                )
            leftover = self._leftover()
            if leftover is None:
                raise Refused(
                    f"DATA_DIR {self.path} is locked by a process that is not a `make run` nor its Redis "
                    f"(see `fuser {self.path / 'serve.lock'}`); stop it and start again"
                )
            self._stop(leftover)
            if not self._try_lock(wait=STOP_SECONDS):
                raise Refused(f"DATA_DIR {self.path} is still locked after its leftover Redis stopped")
        else:
            # A server left by a launcher of an older version, which did not share its lock.
            leftover = self._leftover()
            if leftover is not None:
                self._stop(leftover)
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(f"{os.getpid()}\n")
        self._lock.flush()

    @property
    def lock_fd(self) -> int:
        return self._lock.fileno()

    def _try_lock(self, wait: float = 0) -> bool:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.05)

    def _holder(self) -> int | None:
        self._lock.seek(0)
        text = self._lock.read().strip()
        return int(text) if text.isdigit() else None

    def _leftover(self) -> int | None:
        """The pid of this folder's private Redis if it is still running, recognised for certain."""
        try:
            record = json.loads(self.record.read_text())
            pid, port = int(record["pid"]), int(record["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not _alive(pid):
            return None
        try:
            client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=2)
            with client:
                answered_pid = int(client.info("server")["process_id"])
                answered_dir = client.config_get("dir").get("dir", "")
        except (redis.RedisError, KeyError, ValueError):
            return None
        if answered_pid != pid or os.path.realpath(answered_dir) != os.path.realpath(self.redis_dir):
            return None
        return pid

    def _stop(self, pid: int) -> None:
        print(f"{PROGRAM}: stopping the private Redis (pid {pid}) that an earlier `make run` left running", flush=True)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while _alive(pid):
            if time.monotonic() > deadline:
                raise Refused(f"the private Redis left on {self.redis_dir} (pid {pid}) did not stop; stop it yourself")
            time.sleep(0.05)

    def started(self, server: RedisServer) -> None:
        self.record.write_text(json.dumps({"pid": server.process.pid, "port": server.port}))

    def stopped(self) -> None:
        self.record.unlink(missing_ok=True)


def main() -> int:
    os.environ.update(local.environment(os.environ))
    env = os.environ
    # Every setting the service and gunicorn read, read now: one line and exit 2 on a bad one.
    runpy.run_path(str(BASE_DIR / "gunicorn.conf.py"))
    with exit_on_bad_setting(PROGRAM):
        appendfsync = envchoice("REDIS_APPENDFSYNC", "always", ("always", "everysec", "no"))

    data = DataDir(Path(env["DATA_DIR"]))
    try:
        data.acquire()
    except Refused as exc:
        print(f"{PROGRAM}: {exc}", file=sys.stderr, flush=True)
        return 1

    redis_server = None
    if not any(env.get(name, "").strip() for name in ("REDIS_URL", "REDIS_SENTINELS", "REDIS_CLUSTER_NODES")):
        redis_server = RedisServer(
            data.redis_dir,
            appendfsync=appendfsync,
            new_session=True,
            inherit_fds=(data.lock_fd,),
            # The port gunicorn binds after Redis starts: a test that picked it free a moment
            # ago must not find make run's Redis there (seen once in a CI rehearsal).
            avoid_ports=(int(env.get("PORT", "8000")),),
        )
        redis_server.spawn()
        data.started(redis_server)  # before it answers: a launcher killed now leaves a record
        redis_server.wait_until_ready()
        env["REDIS_URL"] = redis_server.url
        print(f"{PROGRAM}: private Redis on {redis_server.url}, data in {data.redis_dir}", flush=True)

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
            f"{PROGRAM}: serving on http://127.0.0.1:{port}/ (Ctrl-C stops it); "
            "for an admin account at /admin/, run `make superuser` in another terminal",
            flush=True,
        )
        if env.get("OIDC_ISSUER", "").strip() and env.get("OIDC_CLIENT_ID", "").strip():
            print(
                f"{PROGRAM}: single sign-on with {env['OIDC_ISSUER'].strip()}: register "
                f"http://127.0.0.1:{port}/oidc/callback/ with the provider as this client's redirect URI "
                "(behind a proxy: https://<your host>/oidc/callback/)",
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
        if redis_server is not None:
            redis_server.stop()
            data.stopped()
            print(f"{PROGRAM}: private Redis stopped", flush=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
