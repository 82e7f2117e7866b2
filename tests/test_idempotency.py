"""Idempotency-Key on next and set (incrementific/idempotency.py): a retry of a change gets the
first answer again and changes nothing; another request under the same key is refused."""

import threading
import time

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiKey
from accounts.services import api_key_create
from counters import store
from counters.models import Counter
from incrementific import idempotency
from incrementific.redis import keys
from tests.conftest import bearer
from tests.helpers import counter_url, redis_value

KEY = "8e03978e-40d5-43e8-bc93-6894a57f9324"
REUSED = {
    "detail": "This Idempotency-Key was sent before with another request; nothing changed.",
    "code": "idempotency_key_reused",
}


def keyed(client: APIClient, method: str, path: str, key: str = KEY, **kwargs):
    return getattr(client, method)(path, HTTP_IDEMPOTENCY_KEY=key, **kwargs)


def test_a_retried_next_gets_the_same_answer_byte_for_byte_and_takes_no_value(alice_client, alice):
    first = keyed(alice_client, "post", counter_url("default", "/next"))
    assert (first.status_code, first.json()["value"]) == (200, 1)
    assert "Idempotent-Replayed" not in first
    for _ in range(3):
        again = keyed(alice_client, "post", counter_url("default", "/next"))
        assert (again.status_code, again.content, again["Idempotent-Replayed"]) == (200, first.content, "true")
    assert redis_value(alice, "default") == 1
    # Without a key, or with another, next takes values as usual.
    assert alice_client.post(counter_url("default", "/next")).json()["value"] == 2
    assert keyed(alice_client, "post", counter_url("default", "/next"), key="another").json()["value"] == 3


def test_a_retried_set_is_the_same_set(alice_client, alice):
    first = keyed(alice_client, "put", counter_url("default"), data={"value": 40}, format="json")
    alice_client.post(counter_url("default", "/next"))  # 41
    again = keyed(alice_client, "put", counter_url("default"), data={"value": 40}, format="json")
    assert (again.content, again["Idempotent-Replayed"]) == (first.content, "true")
    assert redis_value(alice, "default") == 41  # the retry did not set it back


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("post", counter_url("default", "/next"), {"step": 2}),  # another body
        ("post", counter_url("other", "/next"), None),  # another counter
        ("put", counter_url("default"), {"value": 5}),  # another method
        ("get", "/v1/next", None),  # another surface
    ],
)
def test_the_same_key_with_another_request_is_a_422_and_changes_nothing(alice_client, alice, method, path, body):
    from counters import services

    services.counter_create(owner_id=alice.id, name="other")
    assert keyed(alice_client, "post", counter_url("default", "/next")).json()["value"] == 1
    r = keyed(alice_client, method, path, data=body, format="json")
    assert r.status_code == 422
    assert r.json() in (REUSED, {"message": REUSED["detail"]})
    assert (redis_value(alice, "default"), redis_value(alice, "other")) == (1, 0)


def test_keys_belong_to_their_user(alice_client, alice, bob):
    bob_client = APIClient()
    bob_client.credentials(HTTP_AUTHORIZATION=bearer(bob))
    assert keyed(alice_client, "post", counter_url("default", "/next")).json()["value"] == 1
    assert keyed(alice_client, "post", counter_url("default", "/next")).json()["value"] == 1
    r = keyed(bob_client, "post", counter_url("default", "/next"))
    assert (r.json()["value"], "Idempotent-Replayed" in r) == (1, False)  # bob's own first
    assert (redis_value(alice, "default"), redis_value(bob, "default")) == (1, 1)


@pytest.mark.parametrize("status_path", [(404, counter_url("nope", "/next")), (400, counter_url("default", "/next"))])
def test_an_answer_that_changed_nothing_is_not_kept(alice_client, alice, status_path):
    status, path = status_path
    body = {"step": 0} if status == 400 else None
    assert keyed(alice_client, "post", path, data=body, format="json").status_code == status
    r = keyed(alice_client, "post", counter_url("default", "/next"))  # the fixed request, same key
    assert (r.status_code, r.json()["value"], "Idempotent-Replayed" in r) == (200, 1, False)


def test_a_throttled_or_unauthenticated_request_is_not_kept(alice_client, alice, settings):
    settings.COUNTER_RATE_LIMIT = "1/hour"
    alice_client.get(counter_url("default"))  # the hour's one request
    assert keyed(alice_client, "post", counter_url("default", "/next")).status_code == 429
    assert keyed(APIClient(), "post", counter_url("default", "/next")).status_code == 401
    settings.COUNTER_RATE_LIMIT = ""
    r = keyed(alice_client, "post", counter_url("default", "/next"))
    assert (r.json()["value"], "Idempotent-Replayed" in r) == (1, False)


def test_a_key_is_forgotten_after_its_time(alice_client, alice, settings, redis_conn):
    settings.IDEMPOTENCY_KEY_SECONDS = 1
    assert keyed(alice_client, "post", counter_url("default", "/next")).json()["value"] == 1
    assert 0 < redis_conn.ttl(keys.idempotency(alice.id, KEY)) <= 1
    time.sleep(1.2)
    r = keyed(alice_client, "post", counter_url("default", "/next"))
    assert (r.json()["value"], "Idempotent-Replayed" in r) == (2, False)


@pytest.mark.parametrize("header", ["", " ", "x" * 256, "caf\u00e9", '"unterminated', '"a"b"', "tab\there"])
def test_a_malformed_key_is_a_400_and_changes_nothing(alice_client, alice, header):
    r = keyed(alice_client, "post", counter_url("default", "/next"), key=header)
    assert r.status_code == 400
    assert r.json()["fields"] == {
        "Idempotency-Key": ["Must be 1 to 255 printable ASCII characters, bare or as a quoted string."]
    }
    assert redis_value(alice, "default") == 0


def test_a_structured_field_string_is_the_same_key_as_the_bare_one(alice_client, alice):
    first = keyed(alice_client, "post", counter_url("default", "/next"), key=f'"{KEY}"')
    again = keyed(alice_client, "post", counter_url("default", "/next"), key=KEY)
    assert (again.content, again["Idempotent-Replayed"]) == (first.content, "true")
    quoted = keyed(alice_client, "post", counter_url("default", "/next"), key=r'"with \"quotes\" and \\"')
    assert keyed(alice_client, "post", counter_url("default", "/next"), key='with "quotes" and \\').content == (
        quoted.content
    )


@pytest.mark.django_db(transaction=True)
def test_fifty_threads_with_one_key_move_the_counter_by_one(alice):
    """A block of 3 in the tests: reservations (SQL, between two script calls) happen on the way."""
    key = api_key_create(user_id=alice.id, name="t")[1]
    store.next_value(alice.id, "default", 3)  # at its limit of 3: the first keyed next must reserve
    answers, start = [], threading.Barrier(50)

    def send():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        start.wait()
        r = keyed(client, "post", counter_url("default", "/next"))
        answers.append((r.status_code, r.json().get("value") or r.json().get("code")))

    threads = [threading.Thread(target=send) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert redis_value(alice, "default") == 4
    assert set(answers) <= {(200, 4), (409, "idempotency_key_in_progress")}
    assert (200, 4) in answers


def test_the_prototypes_next_and_set_take_a_key_too(alice, alice_client):
    key = api_key_create(user_id=alice.id, name="v1")[1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    first = keyed(client, "get", "/v1/next")
    again = keyed(client, "get", "/v1/next")
    assert (first.json(), again.content, again["Idempotent-Replayed"]) == (
        {"message": "Incremented", "result": 1},
        first.content,
        "true",
    )
    r = keyed(client, "put", "/v1/set", key="set-1", data="current=9", content_type="application/x-www-form-urlencoded")
    assert r.json() == {"message": "Set", "result": 9}
    assert keyed(client, "put", "/v1/set", key="set-1", data="current=9",
                 content_type="application/x-www-form-urlencoded")["Idempotent-Replayed"] == "true"  # fmt: skip
    assert redis_value(alice, "default") == 9


def test_a_keyed_next_is_one_round_trip_and_no_sql(alice_client, redis_round_trips, django_assert_num_queries):
    alice_client.post(counter_url("default", "/next"))  # past the first reservation of the block
    redis_round_trips.clear()
    with django_assert_num_queries(0):
        keyed(alice_client, "post", counter_url("default", "/next"), key="k1")
        keyed(alice_client, "post", counter_url("default", "/next"), key="k1")
    assert redis_round_trips == ["evalsha", "evalsha"]


def test_a_replay_survives_a_redis_restart_from_its_append_only_file(private_redis, alice_client, alice):
    from incrementific.redis_server import RedisServer

    first = keyed(alice_client, "post", counter_url("default", "/next"))
    private_redis.stop()
    restarted = private_redis.use(RedisServer(private_redis.data_dir, port=private_redis.port).start())
    assert restarted.port == private_redis.port
    again = keyed(alice_client, "post", counter_url("default", "/next"))
    assert (again.content, again["Idempotent-Replayed"]) == (first.content, "true")
    assert redis_value(alice, "default") == 1


def test_the_same_key_while_the_first_request_is_still_going_is_a_409(alice_client, alice):
    """The first request stopped between its two script calls (a reservation in SQL) holds the key."""
    import json

    store.next_value(alice.id, "default", 3)  # at its limit: a next must reserve first
    fingerprint = json.dumps(["POST", counter_url("default", "/next"), {"step": 1}], separators=(",", ":"))
    first = idempotency.Idempotent(KEY, fingerprint, 60)
    with pytest.raises(store.LimitReached):
        store.next_value(alice.id, "default", 1, idempotent=first)
    r = keyed(alice_client, "post", counter_url("default", "/next"))
    assert (r.status_code, r.json()) == (
        409,
        {
            "detail": "The first request with this Idempotency-Key is still being answered; try again.",
            "code": "idempotency_key_in_progress",
        },
    )
    assert redis_value(alice, "default") == 3
    assert store.next_value(alice.id, "default", 1, raise_to=10, idempotent=first).value == 4  # it goes on
    r = keyed(alice_client, "post", counter_url("default", "/next"))
    assert (r.status_code, r.json()["value"], r["Idempotent-Replayed"]) == (200, 4, "true")


def test_a_retried_create_gets_its_201_again_and_makes_one_counter(alice_client, alice):
    first = keyed(alice_client, "post", "/api/counters", data={"name": "invoices", "value": 41}, format="json")
    assert first.status_code == 201
    again = keyed(alice_client, "post", "/api/counters", data={"name": "invoices", "value": 41}, format="json")
    assert (again.status_code, again.content, again["Location"], again["Idempotent-Replayed"]) == (
        201,
        first.content,
        first["Location"],
        "true",
    )
    assert Counter.objects.filter(owner=alice, name="invoices").count() == 1
    # Without the key, the same create is the usual 409.
    assert alice_client.post("/api/counters", {"name": "invoices"}, format="json").status_code == 409
    r = keyed(alice_client, "post", "/api/counters", data={"name": "other"}, format="json")
    assert (r.status_code, r.json()) == (422, REUSED)
    assert not Counter.objects.filter(name="other").exists()


def test_a_retried_delete_deletes_once(alice_client, alice):
    from counters import services

    services.counter_create(owner_id=alice.id, name="tickets")
    assert keyed(alice_client, "delete", counter_url("tickets")).status_code == 204
    services.counter_create(owner_id=alice.id, name="tickets", value=5)  # made again meanwhile
    again = keyed(alice_client, "delete", counter_url("tickets"))
    assert (again.status_code, again["Idempotent-Replayed"]) == (204, "true")
    assert redis_value(alice, "tickets") == 5  # the retry deleted nothing


def test_a_retried_key_creation_makes_one_key_and_redis_never_holds_it(alice_client, alice, redis_conn):
    first = keyed(alice_client, "post", "/api/keys", data={"name": "cron"}, format="json")
    again = keyed(alice_client, "post", "/api/keys", data={"name": "cron"}, format="json")
    assert (again.status_code, again.content, again["Idempotent-Replayed"]) == (201, first.content, "true")
    assert ApiKey.objects.filter(user=alice).count() == 1
    everything = b"".join(redis_conn.dump(name) for name in redis_conn.keys("*"))
    assert first.json()["key"].split(".")[1].encode() not in everything  # not the key's secret part


def test_a_refused_create_is_not_kept(alice_client, alice):
    assert keyed(alice_client, "post", "/api/counters", data={"name": "a b"}, format="json").status_code == 400
    r = keyed(alice_client, "post", "/api/counters", data={"name": "ab"}, format="json")
    assert (r.status_code, "Idempotent-Replayed" in r) == (201, False)


def test_a_retry_after_the_client_hung_up_gets_the_value_its_first_attempt_took(private_redis, tmp_path):
    """Over a real gunicorn: the first attempt's connection is closed before its answer is read, as
    a timeout or a dropped connection does; the retry learns the value that attempt took."""
    import json
    import socket
    import urllib.request

    from tests.helpers import gunicorn

    with gunicorn(tmp_path, private_redis.url, ACCESS_LOG="False", THROTTLE_REGISTER="") as port:

        def call(method, path, body=None, headers=()):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}{path}", data=body, method=method, headers=dict(headers)
            )
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.headers, json.load(answer)

        body = json.dumps({"username": "ada", "password": "correct-horse-battery"}).encode()
        _, registered = call("POST", "/api/auth/register", body, {"Content-Type": "application/json"})
        auth = f"Bearer {registered['access']}"
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(
                f"POST /api/counters/default/next HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
                f"Idempotency-Key: {KEY}\r\nContent-Length: 0\r\n\r\n".encode()
            )
        # Hung up without reading: the value was taken all the same.
        deadline = time.monotonic() + 10
        while call("GET", "/api/counters/default", headers={"Authorization": auth})[1]["value"] != 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        headers, again = call(
            "POST", "/api/counters/default/next", headers={"Authorization": auth, "Idempotency-Key": KEY}
        )
        assert (again["value"], headers["Idempotent-Replayed"]) == (1, "true")
        assert call("GET", "/api/counters/default", headers={"Authorization": auth})[1]["value"] == 1
