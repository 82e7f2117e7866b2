"""The history of changes (counters/history.py): every change but `next`, who, where, old and new."""

import pytest
from django.contrib.auth import get_user_model

from accounts.services import api_key_create
from counters import history, store
from counters.models import CounterChange
from incrementific.redis import keys
from tests.helpers import counter_url
from tests.test_metrics import through_wsgi

pytestmark = pytest.mark.django_db(transaction=True)  # a request through wsgi closes its connection


def changes(client, name):
    r = client.get(counter_url(name, "/history"))
    assert r.status_code == 200, r.content
    return r.json()


def test_create_set_and_a_keyed_set_are_recorded_newest_first_next_is_not(alice_client, alice, api_client, redis_conn):
    assert alice_client.post("/api/counters", {"name": "invoices", "value": 5}).status_code == 201
    assert alice_client.post(counter_url("invoices", "/next")).status_code == 200
    token = alice_client._credentials["HTTP_AUTHORIZATION"]
    # through the WSGI entry point, which gives every request its id (the test client does not)
    assert through_wsgi("PUT", counter_url("invoices"), token, {"value": 100}, HTTP_X_REQUEST_ID="req-1") == 200
    _, secret = api_key_create(user_id=alice.id, name="cron", actions=["set"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api_client.put(counter_url("invoices"), {"value": 7}).status_code == 200
    # the sets wait in the owner's Redis stream until something reads the history
    assert redis_conn.xlen(keys.changes(alice.id)) == 2
    body = changes(alice_client, "invoices")
    assert redis_conn.xlen(keys.changes(alice.id)) == 0
    assert body["count"] == 3 and body["next"] is None
    keyed, by_token, created = body["results"]
    assert keyed == {
        "kind": "set",
        "period": None,
        "old_value": 100,
        "new_value": 7,
        "old_format": None,
        "new_format": None,
        "by": {"user": "alice", "api_key": {"name": "cron", "prefix": secret[: secret.find(".") + 9]}},
        "surface": "api",
        "at": keyed["at"],
        "request_id": keyed["request_id"],
    }
    assert by_token == {
        "kind": "set",
        "period": None,
        "old_value": 6,  # after the next, which is not recorded
        "new_value": 100,
        "old_format": None,
        "new_format": None,
        "by": {"user": "alice", "api_key": None},
        "surface": "api",
        "at": by_token["at"],
        "request_id": "req-1",
    }
    assert created["kind"] == "create" and created["old_value"] is None and created["new_value"] == 5
    assert created["at"] < by_token["at"] <= keyed["at"]


def test_a_set_moved_twice_is_one_row(alice_client, alice):
    alice_client.put(counter_url("default"), {"value": 3})
    entries = store.changes_pending(alice.id)
    assert history.move(alice.id) == 1
    # as if the process died after writing the rows and before dropping the entries
    row, _ = history._decode(alice.id, *entries[0])
    CounterChange.objects.bulk_create([row], ignore_conflicts=True)
    assert CounterChange.objects.filter(owner=alice, kind="set").count() == 1


def test_a_replayed_set_records_nothing_more(alice_client, alice):
    for _ in range(2):
        assert alice_client.put(counter_url("default"), {"value": 9}, HTTP_IDEMPOTENCY_KEY="k").status_code == 200
    assert [c["kind"] for c in changes(alice_client, "default")["results"]] == ["set", "create"]


def test_a_delete_is_recorded_with_the_last_value_and_kept(alice_client, alice):
    alice_client.post(counter_url("default", "/next"))
    assert alice_client.delete(counter_url("default")).status_code == 204
    row = CounterChange.objects.filter(owner=alice).first()
    assert (row.counter, row.kind, row.old_value, row.new_value, row.actor, row.surface) == (
        "default",
        "delete",
        1,
        None,
        alice,
        "api",
    )
    assert alice_client.get(counter_url("default", "/history")).status_code == 404


def test_only_the_owners_own_counters(alice_client, bob_client):
    assert bob_client.get(counter_url("default", "/history")).json()["count"] == 1  # bob's own
    assert bob_client.get(counter_url("nope", "/history")).status_code == 404


@pytest.fixture
def bob_client(bob):
    from rest_framework.test import APIClient

    from tests.conftest import bearer

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(bob))
    return client


def test_the_admin_records_its_staff_user_and_a_reset(client, alice):
    staff = get_user_model().objects.create_superuser("root", "", "a-long-enough-passphrase")
    client.force_login(staff)
    pk = alice.counters.get(name="default").pk
    client.post("/admin/counters/counter/", {"action": "reset_to_zero", "_selected_action": [pk]})
    history.move(alice.id)
    row = CounterChange.objects.filter(owner=alice).first()
    assert (row.kind, row.actor, row.surface, row.new_value) == ("reset", staff, "admin", 0)
    page = client.get("/admin/counters/counterchange/?surface__exact=admin")
    assert page.status_code == 200 and "reset" in page.text


def test_the_web_app_shows_a_counters_last_changes(client, alice):
    client.force_login(alice)
    page = client.get("/")
    assert page.status_code == 200
    assert "Last changes" in page.text and "Create to 0, web app" not in page.text  # created by the API
    client.post("/counters/default/set", {"value": "42"})
    text = client.get("/").text
    assert "Set from 0 to 42, web app</li>" in text


def test_each_process_moves_its_sets_to_sql_in_the_background(tmp_path, private_redis):
    """Under gunicorn, with nobody reading the history, the stream is emptied within seconds."""
    import json
    import time
    import urllib.request

    import redis

    from tests.helpers import gunicorn

    with gunicorn(tmp_path, private_redis.url, log=tmp_path / "gunicorn.log", HISTORY_MOVE_SECONDS="1") as port:

        def call(method, path, body=None, token=None):
            headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
            data = json.dumps(body).encode() if body is not None else None
            request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data, headers, method=method)
            with urllib.request.urlopen(request) as r:
                return json.loads(r.read() or b"null")

        user = call("POST", "/api/auth/register", {"username": "h", "password": "a-long-passphrase!"})
        call("PUT", "/api/counters/default", {"value": 12}, token=user["access"])
        stream = keys.changes(user["id"])
        raw = redis.Redis(port=private_redis.port)
        assert raw.xlen(stream) == 1
        deadline = time.monotonic() + 10
        while raw.xlen(stream) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert raw.xlen(stream) == 0
        [change] = [
            c
            for c in call("GET", "/api/counters/default/history", token=user["access"])["results"]
            if c["kind"] == "set"
        ]
        assert (change["old_value"], change["new_value"], change["by"]["user"]) == (0, 12, "h")
        assert len(change["request_id"]) == 32  # given by the WSGI entry point
