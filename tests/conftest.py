import copy
import itertools
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from redis.connection import Connection
from rest_framework.test import APIClient

from accounts.services import user_register
from accounts.tokens import RefreshToken
from counters import gapless, history
from incrementific.redis import connection
from incrementific.redis_server import RedisServer

_session_redis = None  # a RedisServer, or with TEST_REDIS_CLUSTER a tests.harness.cluster.Cluster

# `make test-cluster`: the same tests with a real six-node Redis Cluster as the store.
CLUSTER = os.environ.get("TEST_REDIS_CLUSTER", "") not in ("", "0")


def pytest_configure(config):
    """Every test run gets a private Redis server: real, never a fake, never a shared one."""
    global _session_redis
    if CLUSTER:
        from tests.harness.cluster import Cluster

        _session_redis = Cluster(Path(settings.DATA_DIR) / "redis-cluster")
        settings.REDIS_CLUSTER_NODES = [("127.0.0.1", port) for port in _session_redis.servers]
    else:
        _session_redis = RedisServer(Path(settings.DATA_DIR) / "redis-session").start()
        settings.CACHES["counters"]["LOCATION"] = _session_redis.url
    # The production static storage (hashed names from a manifest), as `make run` builds it.
    call_command("collectstatic", interactive=False, verbosity=0)


def pytest_terminal_summary(terminalreporter):
    from tests.harness.cluster import REPORTED

    if REPORTED:
        terminalreporter.section("what the cluster tests measured")
        for line in REPORTED:
            terminalreporter.write_line(line)


def pytest_unconfigure(config):
    if _session_redis is not None:
        _session_redis.stop()


def pytest_collection_modifyitems(config, items):
    if CLUSTER:  # what needs one server of its own (or its CONFIG) does not run on the cluster
        skip = pytest.mark.skip(reason="a single server's test (TEST_REDIS_CLUSTER)")
        for item in items:
            if item.get_closest_marker("single_server"):
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _clean_redis():
    client = connection.client()
    client.flushall() if CLUSTER else client.flushdb()
    history.mover.owners.clear()  # sets an earlier test made, which that flush took with it
    gapless.rows.clear()


@pytest.fixture
def redis_conn():
    """The store's own client: django-redis's on one server, a RedisCluster with TEST_REDIS_CLUSTER."""
    return connection.client()


@pytest.fixture
def private_redis(tmp_path):
    """A Redis server of the test's own, that it may kill, flush, pause or replace.

    The counters alias points at it for the test; `use(server)` points it at another.
    """
    servers = []

    def use(server: RedisServer):
        caches = copy.deepcopy(settings.CACHES)
        caches["counters"]["LOCATION"] = server.url
        override = override_settings(CACHES=caches, REDIS_CLUSTER_NODES=[])
        override.enable()
        servers.append((server, override))
        return server

    server = use(RedisServer(tmp_path / "redis").start())
    server.use = use
    yield server
    for srv, override in reversed(servers):
        override.disable()
        srv.stop()


_usernames = (f"user{n}" for n in itertools.count())


@pytest.fixture
def make_user(db):
    def make(username=None, password="a-long-enough-passphrase"):
        return user_register(username=username or next(_usernames), password=password)

    return make


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


def bearer(user) -> str:
    return f"Bearer {RefreshToken.for_user(user).access_token}"


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def alice_client(alice):
    """Alice with a real access token, as clients send it."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(alice))
    return client


@pytest.fixture
def redis_round_trips(monkeypatch):
    """Counts the round trips this process makes to Redis: each time the real client sends a
    request (one command, or a whole pipeline), the name of its first command is recorded."""
    sent: list[str] = []
    real = Connection.send_packed_command

    def send_packed_command(self, command, *args, **kwargs):
        first = command[0] if isinstance(command, list) else command
        sent.append(bytes(first).split(b"\r\n")[2].decode().lower())
        return real(self, command, *args, **kwargs)

    monkeypatch.setattr(Connection, "send_packed_command", send_packed_command)
    return sent
