import copy
import itertools
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from django_redis import get_redis_connection
from redis.connection import Connection
from rest_framework.test import APIClient

from accounts.services import user_register
from accounts.tokens import RefreshToken
from counters import history
from incrementific.redis_server import RedisServer

_session_redis: RedisServer | None = None


def pytest_configure(config):
    """Every test run gets a private Redis server: real, never a fake, never a shared one."""
    global _session_redis
    _session_redis = RedisServer(Path(settings.DATA_DIR) / "redis-session").start()
    settings.CACHES["counters"]["LOCATION"] = _session_redis.url
    # The production static storage (hashed names from a manifest), as `make run` builds it.
    call_command("collectstatic", interactive=False, verbosity=0)


def pytest_unconfigure(config):
    if _session_redis is not None:
        _session_redis.stop()


@pytest.fixture(autouse=True)
def _clean_redis():
    get_redis_connection("counters").flushdb()
    history.mover.owners.clear()  # sets an earlier test made, which that flush took with it


@pytest.fixture
def redis_conn():
    return get_redis_connection("counters")


@pytest.fixture
def private_redis(tmp_path):
    """A Redis server of the test's own, that it may kill, flush, pause or replace.

    The counters alias points at it for the test; `use(server)` points it at another.
    """
    servers = []

    def use(server: RedisServer):
        caches = copy.deepcopy(settings.CACHES)
        caches["counters"]["LOCATION"] = server.url
        override = override_settings(CACHES=caches)
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
