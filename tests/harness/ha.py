"""Replicated Redis for the failover tests (tests/test_ha.py) and `make soak SOAK_SENTINEL=1`.

A primary, its replica and three Sentinels, all real servers on free ports under one folder,
each stopped by its own pid. The configuration is the one README "Redis in production" gives:
``down-after-milliseconds 1000``, ``failover-timeout 3000``; ``repl-diskless-sync-delay 0``
spares every first sync 5 s. Also: app servers on that setup, and client threads that take
`next` through them and keep every value with the moment it was acknowledged.
"""

import base64
import collections
import contextlib
import http.client
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from incrementific.redis_server import RedisServer, RedisServerError, find_binary, free_port
from tests.helpers import gunicorn

MASTER = "mymaster"
NODE_OPTIONS = ("--repl-diskless-sync-delay", "0", "--repl-diskless-sync", "yes")
# Sentinel demotes an old primary with REPLICAOF (SLAVEOF in older releases): a primary with
# both renamed away stays writable after a failover, a split brain that lasts until the test ends.
UNDEMOTABLE = ("--rename-command", "REPLICAOF", "", "--rename-command", "SLAVEOF", "")


def wait_for(predicate, timeout: float, what: str, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


@dataclass
class SentinelServer:
    data_dir: Path
    master_port: int
    port: int = 0
    process: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> "SentinelServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        config = self.data_dir / "sentinel.conf"
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.data_dir}\nlogfile sentinel.log\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {self.master_port} 2\n"
            f"sentinel down-after-milliseconds {MASTER} 1000\n"
            f"sentinel failover-timeout {MASTER} 3000\n"
            f"sentinel parallel-syncs {MASTER} 1\n"
        )
        self.process = subprocess.Popen(
            [find_binary(), str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            wait_for(lambda: self.client().ping(), 10, f"Sentinel on {self.port}")
        except AssertionError:
            raise RedisServerError(f"Sentinel did not start: {self.process.stderr.read().decode()}") from None
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=1, decode_responses=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Replicated:
    """A primary, a replica and three Sentinels under ``folder``; a context manager."""

    def __init__(self, folder: Path, *, primary_options: tuple[str, ...] = ()):
        self.folder = folder
        self.primary = RedisServer(
            folder / "a", appendfsync="everysec", options=(*NODE_OPTIONS, *primary_options)
        ).start()
        self.replica = RedisServer(
            folder / "b",
            appendfsync="everysec",
            options=(*NODE_OPTIONS, "--replicaof", "127.0.0.1", str(self.primary.port)),
        ).start()
        self.servers = {s.port: s for s in (self.primary, self.replica)}
        self.sentinels: list[SentinelServer] = []
        wait_for(lambda: self.node(self.replica).info("replication")["master_link_status"] == "up", 20, "the sync")
        self.sentinels = [SentinelServer(folder / f"s{n}", self.primary.port).start() for n in range(3)]
        for sentinel in self.sentinels:  # each knows the replica and the two other Sentinels
            wait_for(
                lambda s=sentinel: (
                    s.client().sentinel_master(MASTER)["num-other-sentinels"] == 2
                    and len(s.client().sentinel_slaves(MASTER)) == 1
                ),
                30,
                "the Sentinels to find each other and the replica",
                every=0.2,
            )

    @property
    def addresses(self) -> str:
        """REDIS_SENTINELS for this setup."""
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    @staticmethod
    def node(server: RedisServer) -> redis.Redis:
        return redis.Redis(port=server.port, socket_timeout=2)

    def named_primary(self) -> int | None:
        """The port the Sentinels name as the primary (the first that answers)."""
        for sentinel in self.sentinels:
            try:
                return int(sentinel.client().sentinel_get_master_addr_by_name(MASTER)[1])
            except (redis.RedisError, TypeError):
                continue
        return None

    def wait_for_promotion(self, server: RedisServer, timeout: float = 30) -> None:
        """Until the Sentinels name ``server`` and it says it is a primary."""
        wait_for(
            lambda: self.named_primary() == server.port and self.node(server).info("replication")["role"] == "master",
            timeout,
            f"the Sentinels to promote {server.port}",
            every=0.1,
        )

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers.values():
            server.resume()  # a stopped process gets no TERM
            server.kill()

    def __enter__(self) -> "Replicated":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def fill_replica_link(primary: RedisServer, at_least: int = 2_000_000) -> int:
    """With the replica stopped (SIGSTOP), publish 1 MB messages on a channel nobody reads until
    the primary holds ``at_least`` bytes it cannot send: the kernel's socket buffers, which still
    deliver after SIGCONT, are full, and what follows in the stream never reaches the replica.
    Returns the primary's replication offset after the filler."""
    node = redis.Redis(port=primary.port, socket_timeout=5)

    def held() -> int:
        return max(int(client["omem"]) for client in node.client_list(_type="replica"))

    for _ in range(64):
        if held() >= at_least:
            return node.info("replication")["master_repl_offset"]
        node.publish("filler", b"x" * 1_000_000)
    raise AssertionError(f"the primary still sends everything to its stopped replica ({held()} bytes held)")


@contextlib.contextmanager
def shared_database():
    """A database of its own on the machine's PostgreSQL (DATABASE_URL for every app server),
    or None when it does not answer: the app servers then share a SQLite file."""
    try:
        import psycopg

        admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=2)
    except Exception:
        yield None
        return
    name = f"incrementific_ha_{secrets.token_hex(4)}"
    with admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield f"postgres://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


class Apps:
    """App servers on these Sentinels (or, with ``cluster``, on that Redis Cluster's seed nodes),
    all with one database and one set of keys (a token from one is good on the others): each
    :meth:`serve` is a gunicorn instance on a port of its own."""

    def __init__(
        self,
        folder: Path,
        sentinels: str = "",
        *,
        cluster: str = "",
        block: int = 1000,
        database: str | None = None,
        workers: int = 2,
        env: dict[str, str] | None = None,
    ):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.env = {
            **({"REDIS_CLUSTER_NODES": cluster} if cluster else {"REDIS_SENTINELS": sentinels}),
            "REDIS_TIMEOUT_SECONDS": "1",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "JWT_SIGNING_KEY": secrets.token_urlsafe(50),
            "JWT_ACCESS_MINUTES": "600",
            "COUNTER_BLOCK_SIZE": str(block),
            "WEB_CONCURRENCY": str(workers),
            "ACCESS_LOG": "False",
            **({"DATABASE_URL": database} if database else {}),
            **(env or {}),
        }
        self.started = 0

    @contextlib.contextmanager
    def serve(self):
        """One more instance (its log: app<n>.log in the folder); yields its port."""
        self.started += 1
        with gunicorn(self.folder, "", log=self.folder / f"app{self.started}.log", **self.env) as port:
            yield port


def manage_check(data_dir: Path, **env: str) -> tuple[list[str], str]:
    """`manage.py check` against these servers, as an operator runs it: (its output's lines,
    its warnings)."""
    env = {
        "PATH": os.environ["PATH"],
        "DATA_DIR": str(data_dir),
        "SECRET_KEY": "k" * 50,
        "JWT_SIGNING_KEY": "j" * 64,
        **env,
    }
    base = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True, cwd=base)
    return done.stdout.splitlines(), done.stderr


def request(port: int, method: str, path: str, body=None, token: str | None = None, conn=None):
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        if own:
            conn.close()


def token_user_id(token: str) -> int:
    """The user an access token of ours names (its payload, unverified: the tests made it)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["user_id"]


def user_with_counters(port: int, names: list[str]) -> str:
    """A new user and their counters; returns an access token."""
    status, body = request(port, "POST", "/api/auth/register", {"username": "ha", "password": secrets.token_urlsafe()})
    assert status == 201, body
    token = json.loads(body)["access"]
    for name in names:
        status, body = request(port, "POST", "/api/counters", {"name": name}, token)
        assert status == 201, body
    return token


@dataclass
class Taken:
    at: float  # time.monotonic() when the answer arrived
    name: str
    value: int
    port: int


class Load:
    """Client threads taking `next` on ``names`` through the app servers on ``ports`` (thread n
    uses port n % len(ports) and counter n % len(names)), as fast as they can, until stopped;
    every value is kept. ``token``: one user's, or a token for each name (counters of many users)."""

    def __init__(self, ports: list[int], token: str | dict[str, str], names: list[str], threads: int = 6):
        self.ports, self.names = ports, names
        self.tokens = token if isinstance(token, dict) else dict.fromkeys(names, token)
        self.taken: list[Taken] = []
        self.statuses: collections.Counter = collections.Counter()
        self.bodies: dict[int, set[bytes]] = collections.defaultdict(set)  # the answers that were not 200
        self.slowest: dict[int | str, float] = collections.defaultdict(float)  # seconds, per status
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(threads)]

    def _run(self, n: int) -> None:
        port, name = self.ports[n % len(self.ports)], self.names[n % len(self.names)]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while not self._stop.is_set():
            sent = time.monotonic()
            try:
                status, body = request(port, "POST", f"/api/counters/{name}/next", None, self.tokens[name], conn)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                status, body = "connection error", b""
            at = time.monotonic()
            with self._lock:
                self.statuses[status] += 1
                self.slowest[status] = max(self.slowest[status], at - sent)
                if status == 200:
                    self.taken.append(Taken(at, name, json.loads(body)["value"], port))
                else:
                    self.bodies[status].add(body)
            if status != 200:
                time.sleep(0.01)
        conn.close()

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def count(self) -> int:
        with self._lock:
            return len(self.taken)

    def run_for(self, seconds: float, at_least: int = 1) -> None:
        """Let the load go on for ``seconds``, and then until ``at_least`` more values were taken."""
        before = self.count()
        time.sleep(seconds)
        wait_for(lambda: self.count() - before >= at_least, 30, f"{at_least} values taken")

    def duplicates(self) -> dict[str, list[int]]:
        """The values handed out more than once, per counter."""
        seen: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        for t in self.taken:
            seen[t.name][t.value] += 1
        repeated = {name: sorted(v for v, n in counts.items() if n > 1) for name, counts in seen.items()}
        return {name: values for name, values in repeated.items() if values}
