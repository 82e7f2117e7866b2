import threading

import pytest
from django.db import connection

from counters import services
from tests.helpers import MAX, NO_CREDENTIALS, NOT_FOUND, NOT_INTEGERS, OVERFLOW, counter_url, redis_value


def test_it_hands_out_the_next_value(alice_client, alice):
    values = [alice_client.post(counter_url("default", "/next")).json()["value"] for _ in range(10)]
    assert values == list(range(1, 11))
    assert redis_value(alice, "default") == 10


def test_it_answers_with_the_whole_counter(alice_client, alice):
    r = alice_client.post(counter_url("default", "/next/"))
    assert r.status_code == 200
    assert r.json() == {**alice_client.get(counter_url("default")).json(), "value": 1}


@pytest.mark.parametrize("step", [1, 2, 1000, MAX])
def test_it_takes_a_step(alice_client, alice, step):
    r = alice_client.post(counter_url("default", "/next"), {"step": step}, format="json")
    assert r.status_code == 200
    assert r.json()["value"] == step
    assert redis_value(alice, "default") == step


@pytest.mark.parametrize("step", [*NOT_INTEGERS, 0, -1, MAX + 1])
def test_a_bad_step_is_a_400_and_changes_nothing(alice_client, alice, step):
    r = alice_client.post(counter_url("default", "/next"), {"step": step}, format="json")
    assert r.status_code == 400
    assert list(r.json()["fields"]) == ["step"]
    assert redis_value(alice, "default") == 0


@pytest.mark.parametrize(
    "body, error",
    [
        ("[]", "Invalid data. Expected a dictionary, but got list."),
        ("0", "Invalid data. Expected a dictionary, but got int."),
        ("null", "No data provided"),
        ('"1"', "Invalid data. Expected a dictionary, but got str."),
        ("[1]", "Invalid data. Expected a dictionary, but got list."),
    ],
)
def test_a_body_that_is_not_an_object_is_a_400_and_changes_nothing(alice_client, alice, body, error):
    # `[]`, `0` and `null` used to be read as no body at all, and took a value.
    r = alice_client.post(counter_url("default", "/next"), body, content_type="application/json")
    assert r.status_code == 400
    assert r.json() == {"detail": "Invalid input.", "code": "invalid", "fields": {"non_field_errors": [error]}}
    assert redis_value(alice, "default") == 0


def test_an_empty_object_is_the_default_step(alice_client, alice):
    r = alice_client.post(counter_url("default", "/next"), "{}", content_type="application/json")
    assert r.status_code == 200
    assert r.json()["value"] == 1
    assert redis_value(alice, "default") == 1


@pytest.mark.parametrize("start, step", [(MAX, 1), (MAX - 1, 2), (1, MAX), (MAX - 5, 6)])
def test_passing_the_maximum_is_a_409_and_changes_nothing(alice_client, alice, start, step):
    alice_client.put(counter_url("default"), {"value": start}, format="json")
    r = alice_client.post(counter_url("default", "/next"), {"step": step}, format="json")
    assert r.status_code == 409
    assert r.json() == OVERFLOW
    assert redis_value(alice, "default") == start


def test_it_reaches_the_maximum_exactly(alice_client, alice):
    alice_client.put(counter_url("default"), {"value": MAX - 2}, format="json")
    assert alice_client.post(counter_url("default", "/next"), {"step": 2}, format="json").json()["value"] == MAX


def test_another_users_counter_is_a_404(alice_client, bob):
    r = alice_client.post(counter_url("default", "/next"), HTTP_AUTHORIZATION="")
    assert r.status_code == 200  # alice's own default
    services.counter_create(owner_id=bob.id, name="bobonly")
    r = alice_client.post(counter_url("bobonly", "/next"))
    assert r.status_code == 404
    assert r.json() == NOT_FOUND
    assert redis_value(bob, "bobonly") == 0


def test_no_credentials_is_a_401(api_client, alice):
    r = api_client.post(counter_url("default", "/next"))
    assert r.status_code == 401
    assert r.json() == NO_CREDENTIALS
    assert redis_value(alice, "default") == 0


def test_get_is_not_allowed(alice_client, alice):
    r = alice_client.get(counter_url("default", "/next"))
    assert r.status_code == 405
    assert r.json() == {"detail": 'Method "GET" not allowed.', "code": "method_not_allowed"}
    assert redis_value(alice, "default") == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_next_from_many_threads_returns_distinct_values_and_loses_none(make_user):
    """Through the service with the tests' block of 3, so threads also race on reservations."""
    user = make_user()
    threads, per_thread = 8, 60
    results: list[list[int]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads)

    def work(slot):
        barrier.wait()
        try:
            for _ in range(per_thread):
                results[slot].append(services.counter_next(owner_id=user.id, name="default").value)
        finally:
            connection.close()

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    values = sorted(v for r in results for v in r)
    assert values == list(range(1, threads * per_thread + 1))
    for r in results:
        assert r == sorted(r)  # each thread sees its own values rise
    assert redis_value(user, "default") == threads * per_thread
