"""`make run` (incrementific/serve.py) as a person or a supervisor runs it: it comes up with
its own Redis, serves the web app, and a TERM stops gunicorn and then Redis, leaving nothing.
One `make run` a DATA_DIR: a second one refuses, and one killed with -9 leaves nothing that the
next one does not find and stop."""

import json
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
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def servers_on(redis_dir: Path) -> list[int]:
    """Every process working in `redis_dir`: a Redis server runs in its --dir, whatever its title."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and os.path.realpath(proc / "cwd") == str(redis_dir) and alive(int(proc.name)):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def local_env(data_dir: Path, port: int) -> dict[str, str]:
    """make run's own environment: none of the test run's settings, keys, database or Redis."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "SECRET_KEY", "JWT_SIGNING_KEY", "DATABASE_URL", "REDIS_URL"}
        and not key.startswith("COUNTER_")
    }
    env.update(DATA_DIR=str(data_dir), PORT=str(port), ACCESS_LOG="False")
    return env


class Launcher:
    """`make run` on a folder and a port, in a process group of its own (as a terminal starts it)."""

    def __init__(self, data_dir: Path, port: int | None = None):
        self.data_dir, self.port = data_dir, port or free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "incrementific.serve"],
            cwd=settings.BASE_DIR,
            env=local_env(data_dir, self.port),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_until_serving(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url("/"), timeout=2) as page:
                    assert "Numbers that never repeat." in page.read().decode()
                return
            except OSError:
                assert self.process.poll() is None, self.process.stdout.read().decode()
                assert time.monotonic() < deadline, f"make run did not come up in {timeout} s"
                time.sleep(0.2)

    def redis_pid(self) -> int:
        return json.loads((self.data_dir / "redis" / "server.json").read_text())["pid"]

    def cleanup(self) -> None:
        """Whatever happened, nothing this launcher started outlives the test."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # serve.py and gunicorn share this group
        except ProcessLookupError:
            pass
        self.process.wait()
        for pid in servers_on(self.data_dir / "redis"):  # Redis runs in a session of its own
            os.kill(pid, signal.SIGKILL)


def register(launcher: Launcher, username: str) -> str:
    body = json.dumps({"username": username, "password": "correct-horse-battery"}).encode()
    request = urllib.request.Request(
        launcher.url("/v1/register"), data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)["apiKey"]


def take_next(launcher: Launcher, key: str) -> int:
    request = urllib.request.Request(launcher.url("/v1/next"), headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)["result"]


def test_make_run_serves_and_a_term_stops_everything_it_started(tmp_path):
    launcher = Launcher(tmp_path)
    try:
        launcher.wait_until_serving()
        redis_pid = launcher.redis_pid()  # recorded before gunicorn starts
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(launcher.process.pid)], capture_output=True)
        gunicorn_pids = [int(pid) for pid in children.stdout.split()]
        assert alive(redis_pid) and gunicorn_pids
        launcher.process.send_signal(signal.SIGTERM)
        assert launcher.process.wait(timeout=30) == 0
        output = launcher.process.stdout.read().decode()
        assert "incrementific: private Redis stopped" in output
        assert not alive(redis_pid)
        assert not [pid for pid in gunicorn_pids if alive(pid)]
        assert not (tmp_path / "redis" / "server.json").exists()
    finally:
        launcher.cleanup()


def test_a_second_make_run_on_the_same_folder_refuses_and_the_first_serves_on(tmp_path):
    first = Launcher(tmp_path)
    second = None
    try:
        first.wait_until_serving()
        key = register(first, "ada")
        assert take_next(first, key) == 1
        second = Launcher(tmp_path)
        assert second.process.wait(timeout=15) == 1
        assert second.process.stdout.read().decode() == (
            f"incrementific: DATA_DIR {tmp_path} is in use by another `make run` (pid {first.process.pid}); "
            "for a second instance give it a folder of its own: DATA_DIR=./var2 PORT=8001 make run\n"
        )
        # The first is untouched: the same one server on the folder, values still distinct.
        assert [take_next(first, key) for _ in range(3)] == [2, 3, 4]
        assert servers_on(tmp_path / "redis") == [first.redis_pid()]
    finally:
        first.cleanup()
        if second is not None:
            second.cleanup()


def test_a_make_run_killed_with_minus_9_leaves_no_second_server_on_its_data(tmp_path):
    port = free_port()
    first = Launcher(tmp_path, port)
    second = None
    try:
        first.wait_until_serving()
        key = register(first, "ada")
        assert [take_next(first, key) for _ in range(3)] == [1, 2, 3]
        orphan = first.redis_pid()
        os.killpg(first.process.pid, signal.SIGKILL)  # the launcher and gunicorn; Redis has its own session
        first.process.wait()
        assert alive(orphan)

        second = Launcher(tmp_path, port)
        second.wait_until_serving()
        output_so_far = second.process.stdout.read1().decode()
        assert f"incrementific: stopping the private Redis (pid {orphan}) that an earlier `make run` left" in (
            output_so_far
        )
        assert not alive(orphan)
        assert servers_on(tmp_path / "redis") == [second.redis_pid()]
        assert take_next(second, key) == 4  # every acknowledged value kept, none handed out again
    finally:
        first.cleanup()
        if second is not None:
            second.cleanup()
