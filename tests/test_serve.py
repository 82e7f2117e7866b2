"""`make run` (incrementific/serve.py) as a person or a supervisor runs it: it comes up with
its own Redis, serves the web app, and a TERM stops gunicorn and then Redis, leaving nothing."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.conf import settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_make_run_serves_and_a_term_stops_everything_it_started(tmp_path):
    port = free_port()
    # make run's own environment: none of the test run's settings, keys, database or Redis.
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "SECRET_KEY", "JWT_SIGNING_KEY", "DATABASE_URL", "REDIS_URL"}
        and not key.startswith("COUNTER_")
    }
    env.update(DATA_DIR=str(tmp_path), PORT=str(port), ACCESS_LOG="False")
    serve = subprocess.Popen(
        [sys.executable, "-m", "incrementific.serve"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as page:
                    assert "Numbers that never repeat." in page.read().decode()
                break
            except OSError:
                assert serve.poll() is None, serve.stdout.read().decode()
                assert time.monotonic() < deadline, "make run did not come up in 60 s"
                time.sleep(0.2)
        redis_pid = int((tmp_path / "redis" / "server.pid").read_text())  # written before gunicorn starts
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(serve.pid)], capture_output=True, text=True)
        gunicorn_pids = [int(pid) for pid in children.stdout.split()]
        assert alive(redis_pid) and gunicorn_pids
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=30) == 0
        output = serve.stdout.read().decode()
        assert "incrementific: private Redis stopped" in output
        assert not alive(redis_pid)
        assert not [pid for pid in gunicorn_pids if alive(pid)]
    finally:
        # Whatever happened above, nothing this test started outlives it.
        try:
            os.killpg(serve.pid, signal.SIGKILL)  # serve.py and gunicorn share this group
        except ProcessLookupError:
            pass
        serve.wait()
        pidfile = tmp_path / "redis" / "server.pid"
        if pidfile.exists() and alive(int(pidfile.read_text())):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)  # Redis runs in a session of its own
