import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from counters.models import Counter
from tests.helpers import gunicorn, redis_value

PASSWORD = "a-long-enough-passphrase"
BASE_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture
def limits(settings):
    def set_limits(**rates):
        settings.RATE_LIMITS = {**settings.RATE_LIMITS, **rates}

    return set_limits


def login(client, username="alice", password=PASSWORD, **extra):
    return client.post("/api/auth/token", {"username": username, "password": password}, format="json", **extra)


def assert_throttled(r):
    assert r.status_code == 429
    assert r.json()["code"] == "throttled"
    assert re.fullmatch(r"Request was throttled\. Expected available in \d+ seconds?\.", r.json()["detail"])
    assert 1 <= int(r["Retry-After"]) <= 3600


def test_logins_are_limited_per_client_address(api_client, alice, limits):
    limits(login="3/hour")
    assert [login(api_client).status_code for _ in range(3)] == [200, 200, 200]
    assert_throttled(login(api_client))
    assert login(api_client, REMOTE_ADDR="10.9.8.7").status_code == 200  # another address


def test_wrong_passwords_are_limited_per_username(api_client, alice, bob, limits):
    limits(login_failures="2/hour")
    assert [login(api_client, password="wrong-guess").status_code for _ in range(2)] == [401, 401]
    r = login(api_client, username="ALICE")  # even the right password, in any case, now waits
    assert r.status_code == 429
    assert 1 <= int(r["Retry-After"]) <= 3600
    assert login(api_client, username="bob").status_code == 200  # another user is not locked out


def test_right_passwords_do_not_count_as_failures(api_client, alice, limits):
    limits(login_failures="2/hour")
    assert [login(api_client).status_code for _ in range(5)] == [200] * 5


def test_registrations_are_limited_per_client_address(api_client, db, limits):
    limits(register="2/hour")
    for n in range(2):
        body = {"username": f"new{n}", "password": PASSWORD}
        assert api_client.post("/api/auth/register", body, format="json").status_code == 201
    r = api_client.post("/api/auth/register", {"username": "new2", "password": PASSWORD}, format="json")
    assert r.status_code == 429
    assert not get_user_model().objects.filter(username="new2").exists()


def test_v1_register_is_limited_like_a_login_and_a_registration(api_client, db, limits):
    limits(register="1/hour", login_failures="1/hour")
    register = lambda name, pw=PASSWORD: api_client.post(  # noqa: E731
        "/v1/register", {"username": name, "password": pw}, format="json"
    )
    assert register("proto").status_code == 200
    assert register("proto").status_code == 200  # a new key for an existing user is not a registration
    assert register("another").status_code == 429
    assert register("proto", "wrong-guess").status_code == 401
    r = register("proto")
    assert r.status_code == 429
    assert list(r.json()) == ["message"]


def test_the_counter_cap_is_a_403(alice_client, alice, settings):
    settings.MAX_COUNTERS_PER_USER = 2
    assert alice_client.post("/api/counters", {"name": "second"}, format="json").status_code == 201
    r = alice_client.post("/api/counters", {"name": "third"}, format="json")
    assert r.status_code == 403
    assert r.json() == {"detail": "You have 2 counters, the most one account may have.", "code": "counter_limit"}
    assert not Counter.objects.filter(name="third").exists()
    assert redis_value(alice, "third") is None


@pytest.mark.django_db(transaction=True)
def test_the_limit_is_shared_by_every_gunicorn_worker(private_redis, tmp_path):
    """Three worker processes, one count: the sixth login from one address is a 429, whichever
    worker takes it."""
    log = tmp_path / "access.log"
    logging = ("--access-logformat", "%(p)s %(s)s", "--access-logfile", str(log))
    # an hour: a window boundary inside the test would reset the count
    with gunicorn(tmp_path, private_redis.url, *logging, THROTTLE_LOGIN="5/hour", WEB_CONCURRENCY="3") as port:
        with ThreadPoolExecutor(12) as pool:  # at once, so that every worker takes some
            statuses = list(pool.map(lambda _: _post_login(port), range(12)))
    assert sorted(statuses) == [401] * 5 + [429] * 7
    workers = {line.split()[0] for line in log.read_text().splitlines() if line.endswith(("401", "429"))}
    assert len(workers) > 1, "one worker answered everything; the test proves nothing"


def _post_login(port: int) -> int:
    body = b'{"username": "nobody", "password": "whatever-it-is"}'
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/auth/token", body, {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
