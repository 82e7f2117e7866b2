"""The client package (client/) and its `incrementific` command, against the real service under
gunicorn with a Redis of the test's own, and a proxy that really loses answers on the way back."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from incrementific_client import Client, NotFound, RateLimited, ScopeError, Unavailable

from tests.helpers import gunicorn

COMMAND = str(Path(sys.executable).parent / "incrementific")  # the script pip installed
PASSWORD = "a-long-enough-passphrase"


def call(port: int, path: str, body: dict, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(), headers)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


class Proxy:
    """Forwards each request to the service and reads its whole answer; then, for the first
    ``drop`` requests whose request line holds ``matching``, hangs up instead of passing it on:
    the change was made, and the client never hears of it. ``seen``: (request line, status).
    ``on_drop``: what else happens before it hangs up (a Redis flush)."""

    def __init__(self, upstream: int, drop: int = 0, matching: str = "/next", on_drop=None):
        self.upstream, self.drop, self.matching, self.on_drop = upstream, drop, matching, on_drop
        self.seen: list[tuple[str, int]] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket):
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                request += chunk
            head, _, body = request.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            while len(body) < length:
                body += conn.recv(65536)
            with socket.create_connection(("127.0.0.1", self.upstream)) as up:
                up.sendall(head + b"\r\n\r\n" + body)
                answer = b""
                while chunk := up.recv(65536):  # the client sends Connection: close
                    answer += chunk
            line = head.split(b"\r\n")[0].decode()
            self.seen.append((line, int(answer.split(b" ", 2)[1])))
            if self.drop and self.matching in line:
                self.drop -= 1
                if self.on_drop is not None:
                    self.on_drop()
                return  # the answer is lost: the connection closes without it
            conn.sendall(answer)

    def close(self):
        self.server.close()


@pytest.fixture
def service(tmp_path, private_redis):
    """The service, a user with an API key, and a client that talks to it directly."""

    def start(**env):
        return gunicorn(tmp_path / f"data{len(started)}", private_redis.url, "--workers", "2", **env)

    started = []

    class Service:
        def __init__(self, port):
            self.port = port
            self.url = f"http://127.0.0.1:{port}"
            self.access = call(port, "/api/auth/register", {"username": "ci", "password": PASSWORD})["access"]
            self.key = call(port, "/api/keys", {"name": "ci"}, self.access)["key"]
            self.redis = private_redis

        def client(self, url=None, **options):
            return Client(url or self.url, api_key=self.key, **options)

        def run(self, *args, url=None, key=None, **kwargs):
            env = {**os.environ, "INCREMENTIFIC_URL": url or self.url, "INCREMENTIFIC_API_KEY": key or self.key}
            return subprocess.run([COMMAND, *args], env=env, capture_output=True, text=True, timeout=60, **kwargs)

    def make(**env):
        context = start(**env)
        port = context.__enter__()
        started.append(context)
        return Service(port)

    yield make
    for context in started:
        context.__exit__(None, None, None)


def test_an_answer_lost_on_the_way_back_is_asked_again_and_the_same_value_comes_back(service):
    svc = service()
    proxy = Proxy(svc.port, drop=1)
    counter = svc.client(proxy.url).next("default")
    assert (counter.value, counter.replayed) == (1, True)
    assert proxy.seen == [("POST /api/counters/default/next HTTP/1.1", 200)] * 2  # made once, answered twice
    assert svc.client().current("default").value == 1  # the counter moved by exactly one
    # the same through the command: one line, the value
    proxy.drop = 1
    done = svc.run("next", "default", url=proxy.url)
    assert (done.returncode, done.stdout, done.stderr) == (0, "2\n", "")
    assert svc.client().current("default").value == 2
    proxy.close()


def test_the_command_waits_for_redis_through_the_503s_and_past_its_deadline_prints_nothing(service):
    svc = service()
    svc.redis.stop()
    running = subprocess.Popen(
        [COMMAND, "--deadline", "40", "next", "default"],
        env={**os.environ, "INCREMENTIFIC_URL": svc.url, "INCREMENTIFIC_API_KEY": svc.key},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2)  # it is retrying through the 503s
    assert running.poll() is None
    svc.redis.start()
    out, err = running.communicate(timeout=45)
    assert (running.returncode, out, err) == (0, "1\n", "")
    svc.redis.stop()
    started = time.monotonic()
    done = svc.run("--deadline", "3", "next", "default")
    assert time.monotonic() - started < 10
    assert (done.returncode, done.stdout) == (5, "")
    assert done.stderr.startswith("incrementific: counter_store_unavailable: Counter storage is unavailable")
    assert "(request id " in done.stderr and done.stderr.count("\n") == 1
    svc.redis.start()
    assert svc.client().current("default").value == 1  # the one that timed out never got an answer in


def test_a_429_is_waited_out_and_a_404_or_a_scope_403_is_not_retried(service):
    svc = service(COUNTER_RATE_LIMIT="3/second")
    proxy = Proxy(svc.port)
    client = svc.client(proxy.url)
    values = [client.next("default").value for _ in range(8)]
    assert values == list(range(1, 9))
    assert 429 in [status for _, status in proxy.seen]  # some were refused, and waited out
    proxy.seen.clear()
    with pytest.raises(NotFound) as missing:
        client.next("nothing")
    assert (missing.value.code, missing.value.status, len(proxy.seen)) == ("not_found", 404, 1)
    assert missing.value.request_id
    scoped = call(svc.port, "/api/keys", {"name": "one", "counters": ["builds"]}, svc.access)["key"]
    proxy.seen.clear()
    with pytest.raises(ScopeError) as denied:
        Client(proxy.url, api_key=scoped).next("default")
    assert (denied.value.code, len(proxy.seen)) == ("api_key_scope", 1)
    done = svc.run("next", "default", key=scoped)
    assert (done.returncode, done.stdout) == (3, "")
    assert svc.run("next", "nothing").returncode == 4
    with pytest.raises(RateLimited):  # no time left to wait it out: said, not slept through
        fast = svc.client(deadline=0.5)
        for _ in range(20):
            fast.next("default")
    proxy.close()


def test_twenty_commands_at_once_print_twenty_consecutive_values(service):
    svc = service()
    call(svc.port, "/api/counters", {"name": "builds"}, svc.access)
    env = {**os.environ, "INCREMENTIFIC_URL": svc.url, "INCREMENTIFIC_API_KEY": svc.key}
    running = [
        subprocess.Popen([COMMAND, "next", "builds"], env=env, stdout=subprocess.PIPE, text=True) for _ in range(20)
    ]
    printed = [int(p.communicate(timeout=60)[0]) for p in running]
    assert [p.returncode for p in running] == [0] * 20
    assert sorted(printed) == list(range(1, 21))


def test_the_command_creates_a_series_and_prints_formatted_values(service):
    svc = service()
    done = svc.run("create", "sales", "--reset", "yearly", "--format", "INV-{year}-{value:05}")
    assert done.returncode == 0 and done.stdout.startswith("INV-") and done.stdout.endswith("-00000\n")
    assert svc.run("next", "sales", "--date", "2026-03-01").stdout == "INV-2026-00001\n"
    assert svc.run("set", "sales", "41", "--date", "2026-03-01").stdout == "INV-2026-00041\n"
    answer = json.loads(svc.run("--json", "next", "sales", "--date", "2026-12-31").stdout)
    assert (answer["value"], answer["formatted"], answer["period"], answer["replayed"]) == (
        42,
        "INV-2026-00042",
        "2026",
        False,
    )
    assert svc.run("current", "sales", "--date", "2027-01-01").stdout == "INV-2027-00000\n"
    refused = svc.run("next", "sales", "--date", "2026-02-30")
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr.startswith("incrementific: invalid_date: Invalid input. date: 2026-02-30 is not a date")
    assert svc.run("next", "sales", key="inc_1.wrong").returncode == 3
    usage = subprocess.run([COMMAND, "next", "x"], env={"PATH": os.environ["PATH"]}, capture_output=True, text=True)
    assert (usage.returncode, usage.stdout) == (2, "")
    assert "no service URL" in usage.stderr
    assert "exit codes:" in subprocess.run([COMMAND, "--help"], capture_output=True, text=True).stdout


def test_the_library_in_three_lines_and_its_typed_results(service, monkeypatch):
    svc = service()
    monkeypatch.setenv("INCREMENTIFIC_URL", svc.url)
    monkeypatch.setenv("INCREMENTIFIC_API_KEY", svc.key)
    client = Client.from_env()
    client.create("tickets", reset="monthly", timezone="Europe/Paris", format="T-{yy}{month}-{value:04}")
    ticket = client.next("tickets", date="2026-05-17")
    assert (ticket.value, ticket.formatted, ticket.period, ticket.replayed) == (1, "T-2605-0001", "2026-05", False)
    assert [p.period for p in client.periods("tickets")] == ["2026-05"]
    assert {c.name for c in client.counters()} == {"default", "tickets"}
    client.delete("tickets")
    with pytest.raises(NotFound):
        client.current("tickets")
    with pytest.raises(Unavailable) as down:  # nothing answers there at all
        Client("http://127.0.0.1:9", api_key=svc.key, deadline=1).next("default")
    assert down.value.code == "connection" and down.value.idempotency_key
