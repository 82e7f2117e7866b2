"""The Redis ACL that docs/redis-in-production.md gives the app's user is enough, and no more.

The line is read from that page itself, so the page stays true: every surface that touches
Redis (accounts and their rate limits, tokens and their revocation, API keys and their entries,
counters, lists, Idempotency-Keys, deletes, manage.py check) runs as that user.
"""

import copy
import re
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from counters.checks import check_counter_redis

PAGE = Path(__file__).resolve().parent.parent / "docs" / "redis-in-production.md"
PASSWORD = "a-long-random-password"


def acl_lines() -> list[str]:
    """The page's lines: the user's whole definition, then what a Cluster adds."""
    lines = re.findall(r"^ACL SETUSER incrementific .*$", PAGE.read_text(), re.MULTILINE)
    assert len(lines) == 2 and "resetkeys" in lines[0] and "resetkeys" not in lines[1], lines
    return [line.replace("<password>", PASSWORD) for line in lines]


def acl_line() -> str:
    return acl_lines()[0]


@pytest.fixture
def as_acl_user(private_redis):
    admin = redis.Redis(port=private_redis.port)
    admin.execute_command(*acl_line().split())
    caches = copy.deepcopy(settings.CACHES)
    caches["counters"]["LOCATION"] = f"redis://incrementific:{PASSWORD}@127.0.0.1:{private_redis.port}/0"
    with override_settings(CACHES=caches):
        yield admin


def test_the_app_user_can_do_everything_the_service_does(as_acl_user, api_client, capsys, db):
    account = {"username": "ada", "password": "a-long-enough-passphrase"}
    r = api_client.post("/api/auth/register", account)
    assert r.status_code == 201, r.content
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {r.json()['access']}")
    assert api_client.post("/api/auth/token", account).status_code == 200
    assert api_client.post("/api/counters", {"name": "invoices"}).status_code == 201
    assert api_client.post("/api/counters/invoices/next").json()["value"] == 1
    assert api_client.post("/api/counters/invoices/next", HTTP_IDEMPOTENCY_KEY="k1").json()["value"] == 2
    assert api_client.post("/api/counters/invoices/next", HTTP_IDEMPOTENCY_KEY="k1").json()["value"] == 2
    assert api_client.put("/api/counters/invoices", {"value": 5000}).json()["value"] == 5000
    assert [c["value"] for c in api_client.get("/api/counters").json()["results"]] == [0, 5000]
    history = api_client.get("/api/counters/invoices/history").json()["results"]  # the stream moved to SQL
    assert [(c["kind"], c["new_value"]) for c in history] == [("set", 5000), ("create", 0)]
    key = api_client.post("/api/keys", {"name": "cron"}).json()["key"]
    keyed = api_client.__class__()
    keyed.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert keyed.post("/api/counters/invoices/next").json()["value"] == 5001
    [entry] = as_acl_user.keys("ctr:*:~key:*")
    as_acl_user.delete(entry)  # the entry forgotten: the key is checked in SQL, and its entry put back
    assert keyed.post("/api/counters/invoices/next").json()["value"] == 5002
    assert as_acl_user.exists(entry) == 1
    as_acl_user.flushall()  # every counter forgotten: restored from SQL
    assert api_client.get("/api/counters/invoices").json()["value"] >= 5002
    assert api_client.delete("/api/counters/default").status_code == 204
    new_password = {"old_password": "a-long-enough-passphrase", "new_password": "another-long-passphrase"}
    assert api_client.post("/api/auth/password", new_password).status_code == 204
    assert api_client.get("/api/counters/invoices").status_code == 401  # the mark refuses the token
    assert check_counter_redis() == []
    call_command("check")
    assert "counters.W001" not in capsys.readouterr().err


def test_the_app_user_can_do_nothing_else(as_acl_user):
    port = as_acl_user.connection_pool.connection_kwargs["port"]
    user = redis.Redis(port=port, username="incrementific", password=PASSWORD)
    for command in (("FLUSHALL",), ("CONFIG", "SET", "appendonly", "no"), ("KEYS", "*"), ("SET", "other", "1")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            user.execute_command(*command)
