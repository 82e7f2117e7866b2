"""`Accept: text/plain` on a counter's next and read: the value and a newline, for scripts."""

from accounts.services import api_key_create
from tests.helpers import redis_value

PLAIN = "text/plain; charset=utf-8"


def test_next_answers_the_value_alone(alice, alice_client):
    r = alice_client.post("/api/counters/default/next", HTTP_ACCEPT="text/plain")
    assert (r.status_code, r["Content-Type"], r.content) == (200, PLAIN, b"1\n")
    assert redis_value(alice, "default") == 1


def test_a_read_answers_the_value_alone_and_a_step_counts_as_usual(alice, alice_client):
    alice_client.post("/api/counters/default/next", {"step": 41}, format="json", HTTP_ACCEPT="text/plain")
    r = alice_client.get("/api/counters/default", HTTP_ACCEPT="text/plain")
    assert (r.status_code, r["Content-Type"], r.content) == (200, PLAIN, b"41\n")


def test_with_an_api_key_and_a_retry_the_replay_is_the_same_text(alice, api_client):
    key = api_key_create(user_id=alice.id, name="ci", actions=["next"])[1]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    first = api_client.post("/api/counters/default/next", HTTP_ACCEPT="text/plain", HTTP_IDEMPOTENCY_KEY="build-7")
    again = api_client.post("/api/counters/default/next", HTTP_ACCEPT="text/plain", HTTP_IDEMPOTENCY_KEY="build-7")
    assert (first.content, again.content, again["Idempotent-Replayed"]) == (b"1\n", b"1\n", "true")
    assert redis_value(alice, "default") == 1


def test_an_error_keeps_its_json_body(alice, alice_client, api_client):
    r = alice_client.post("/api/counters/nothing-here/next", HTTP_ACCEPT="text/plain")
    assert (r.status_code, r["Content-Type"], r.json()) == (
        404,
        "application/json",
        {"detail": "Not found.", "code": "not_found"},
    )
    r = api_client.post("/api/counters/default/next", HTTP_ACCEPT="text/plain")
    assert (r.status_code, r["Content-Type"], r.json()["code"]) == (401, "application/json", "not_authenticated")
    r = alice_client.post("/api/counters/default/next", {"step": 0}, format="json", HTTP_ACCEPT="text/plain")
    assert (r.status_code, r.json()["code"], r.json()["fields"].keys()) == (400, "invalid", {"step"})
    assert redis_value(alice, "default") == 0


def test_other_operations_do_not_answer_text(alice, alice_client):
    r = alice_client.put("/api/counters/default", {"value": 5}, format="json", HTTP_ACCEPT="text/plain")
    assert (r.status_code, r.json()["code"]) == (406, "not_acceptable")
    assert redis_value(alice, "default") == 0
