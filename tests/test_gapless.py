"""Gapless counters (counters/gapless.py): every number recorded as it is handed out, none
skipped, none twice, whatever happens to Redis."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import date

import pytest
import redis
from django.db import connection

from accounts.services import api_key_create
from counters import gapless, services
from counters.models import Counter, CounterChange, IssuedValue
from counters.series import Series, known
from incrementific.redis import connection as redis_connection
from incrementific.redis_server import RedisServer
from tests import test_client
from tests.conftest import bearer
from tests.helpers import BASE_DIR, counter_url
from tests.test_client import Proxy
from tests.test_metrics import through_wsgi

INVOICES = {"name": "invoices", "gapless": True, "reset": "yearly", "format": "INV-{year}-{value:05}"}
YEAR = date.today().year


def create(client, **body):
    r = client.post("/api/counters", body, format="json")
    assert r.status_code == 201, r.content
    return r.json()


def take(client, name="invoices", headers=None, **body):
    r = client.post(counter_url(name, "/next"), body, format="json", **(headers or {}))
    assert r.status_code == 200, r.content
    return r.json()


def log(user, name="invoices") -> list[tuple]:
    """The counter's log, oldest first: (period, value, status, metadata, void_reason)."""
    return list(
        IssuedValue.objects.filter(counter__owner=user, counter__name=name)
        .order_by("id")
        .values_list("period", "value", "status", "metadata", "void_reason")
    )


def key_client(api_client, user, **scope):
    _, secret = api_key_create(user_id=user.id, name="billing", **scope)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api_client, secret


service = test_client.service  # the fixture: gunicorn, a Redis of the test's own, a user and a key

# --- the contract ------------------------------------------------------------------------------


def test_a_gapless_series_hands_out_each_number_with_its_record(alice, alice_client):
    body = create(alice_client, **INVOICES)
    assert body["gapless"] is True and body["value"] == 0
    first = take(alice_client, metadata={"invoice": "A-1043"})
    assert (first["value"], first["formatted"], first["period"]) == (1, f"INV-{YEAR}-00001", str(YEAR))
    assert first["gapless"] is True
    assert take(alice_client)["value"] == 2
    assert take(alice_client, step=3, metadata={"batch": 1})["value"] == 5
    assert log(alice) == [
        (str(YEAR), 1, "issued", {"invoice": "A-1043"}, ""),
        (str(YEAR), 2, "issued", None, ""),
        (str(YEAR), 3, "issued", {"batch": 1}, ""),
        (str(YEAR), 4, "issued", {"batch": 1}, ""),
        (str(YEAR), 5, "issued", {"batch": 1}, ""),
    ]
    read = alice_client.get(counter_url("invoices")).json()
    assert (read["value"], read["formatted"], read["gapless"]) == (5, f"INV-{YEAR}-00005", True)
    # Redis holds no value of it: the row does (its period's)
    assert Counter.objects.get(owner=alice, name="invoices").periods.get(period=str(YEAR)).reserved_through == 5


@pytest.mark.django_db(transaction=True)  # the WSGI handler closes the connection after its request
def test_the_log_and_one_entry_as_the_api_shows_them(alice, alice_client):
    create(alice_client, **INVOICES)
    # through the WSGI entry point gunicorn calls, which reads X-Request-ID
    status = through_wsgi(
        "POST",
        counter_url("invoices", "/next"),
        bearer(alice),
        {"metadata": {"invoice": "A-1"}},
        HTTP_X_REQUEST_ID="req-A-1",
    )
    assert status == 200
    take(alice_client, date=f"{YEAR - 1}-12-31")
    r = alice_client.get(counter_url("invoices", "/values"))
    assert r.status_code == 200
    page = r.json()
    assert page["count"] == 2
    newest, oldest = page["results"]
    assert (newest["value"], newest["period"], newest["formatted"]) == (1, str(YEAR - 1), f"INV-{YEAR - 1}-00001")
    entry = dict(oldest)
    assert entry.pop("issued_at").startswith(str(YEAR))
    assert entry == {
        "value": 1,
        "period": str(YEAR),
        "formatted": f"INV-{YEAR}-00001",
        "status": "issued",
        "issued_by": {"user": "alice", "api_key": None},
        "surface": "api",
        "request_id": "req-A-1",
        "metadata": {"invoice": "A-1"},
        "voided_at": None,
        "voided_by": None,
        "void_reason": None,
    }
    one = alice_client.get(counter_url("invoices", "/values/1"))
    assert one.status_code == 200 and one.json() == oldest
    last_year = alice_client.get(counter_url("invoices", f"/values/1?date={YEAR - 1}-06-01")).json()
    assert last_year == newest
    only = alice_client.get(counter_url("invoices", f"/values?date={YEAR - 1}-01-01")).json()
    assert [e["period"] for e in only["results"]] == [str(YEAR - 1)]
    assert alice_client.get(counter_url("invoices", "/values?status=voided")).json()["count"] == 0
    bad = alice_client.get(counter_url("invoices", "/values?status=lost"))
    assert bad.status_code == 400 and bad.json()["fields"] == {"status": ["Must be issued or voided."]}
    missing = alice_client.get(counter_url("invoices", "/values/2"))
    assert missing.status_code == 404
    assert missing.json() == {"detail": "This number was not handed out (in that period).", "code": "not_found"}


def test_void_void_twice_and_void_a_number_not_handed_out(alice, alice_client):
    create(alice_client, **INVOICES)
    take(alice_client)
    take(alice_client)
    r = alice_client.post(counter_url("invoices", "/values/1/void"), {"reason": "printer jam"}, format="json")
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["status"], body["void_reason"], body["voided_by"]) == (
        "voided",
        "printer jam",
        {"user": "alice", "api_key": None},
    )
    assert body["voided_at"] is not None
    again = alice_client.post(counter_url("invoices", "/values/1/void"), {"reason": "again"}, format="json")
    assert again.status_code == 409
    assert again.json() == {"detail": "This number is voided already.", "code": "already_voided"}
    unknown = alice_client.post(counter_url("invoices", "/values/3/void"), {"reason": "x"}, format="json")
    assert unknown.status_code == 404
    for reason in ["", "x" * 501, 5, None]:
        bad = alice_client.post(counter_url("invoices", "/values/2/void"), {"reason": reason}, format="json")
        assert bad.status_code == 400, reason
    assert log(alice) == [(str(YEAR), 1, "voided", None, "printer jam"), (str(YEAR), 2, "issued", None, "")]
    # the number stays taken
    assert take(alice_client)["value"] == 3


@pytest.mark.parametrize(
    "reason, accepted",
    [("\n", False), (" \t ", False), ("", False), (" " + "x" * 500, False), ("x" * 500, True), (" jam\n", True)],
)
def test_a_reason_is_1_to_500_characters_as_sent_and_not_only_white_space(alice, alice_client, reason, accepted):
    """Found by schemathesis: a reason of white space alone, which the schema allowed, was a 400
    (DRF trimmed it to nothing); and a trimmed reason's length was not the one the schema states."""
    create(alice_client, **INVOICES)
    take(alice_client)
    pattern = alice_client.get("/api/schema?format=json").json()["components"]["schemas"]["VoidRequest"]
    pattern = pattern["properties"]["reason"]
    in_schema = 1 <= len(reason) <= pattern["maxLength"] and re.search(pattern["pattern"], reason) is not None
    r = alice_client.post(counter_url("invoices", "/values/1/void"), {"reason": reason}, format="json")
    assert (r.status_code == 200, in_schema) == (accepted, accepted), r.content
    if accepted:
        assert log(alice)[0][4] == reason  # kept as sent
    else:
        assert r.json()["code"] == "invalid" and log(alice)[0][2] == "issued"


def test_a_set_only_moves_up_and_records_the_numbers_it_passes_over(alice, alice_client):
    create(alice_client, name="g", gapless=True)
    take(alice_client, "g")
    r = alice_client.put(counter_url("g"), {"value": 4}, format="json")
    assert r.status_code == 200 and r.json()["value"] == 4
    assert log(alice, "g") == [
        ("", 1, "issued", None, ""),
        ("", 2, "voided", None, "set"),
        ("", 3, "voided", None, "set"),
        ("", 4, "voided", None, "set"),
    ]
    same = alice_client.put(counter_url("g"), {"value": 4}, format="json")
    assert same.status_code == 200 and same.json()["value"] == 4
    down = alice_client.put(counter_url("g"), {"value": 3}, format="json")
    assert down.status_code == 409
    assert down.json() == {
        "detail": "Numbers up to 4 were handed out: a gapless counter is only set up.",
        "code": "below_issued",
    }
    far = alice_client.put(counter_url("g"), {"value": 4 + gapless.RECORDS_MAX + 1}, format="json")
    assert (far.status_code, far.json()) == (
        409,
        {
            "detail": "A gapless counter records each number a set passes over: at most 10,000 at once; "
            "nothing changed.",
            "code": "gap_too_large",
        },
    )
    assert take(alice_client, "g")["value"] == 5
    assert len(log(alice, "g")) == 5
    sets = CounterChange.objects.filter(owner=alice, counter="g", kind="set")
    assert list(sets.values_list("old_value", "new_value")) == [(1, 4)]


def test_a_step_records_each_number_up_to_the_most_one_call_records(alice, alice_client):
    """Found by schemathesis: a step of 12,622,060,956 held a worker past its timeout, building
    one INSERT of that many rows under the counter's lock."""
    create(alice_client, name="g", gapless=True)
    r = alice_client.post(counter_url("g", "/next"), {"step": gapless.RECORDS_MAX + 1}, format="json")
    assert (r.status_code, r.json()) == (
        409,
        {
            "detail": "A gapless counter records each number it hands out: a step of at most 10,000; nothing changed.",
            "code": "step_too_large",
        },
    )
    assert log(alice, "g") == []
    assert take(alice_client, "g", step=gapless.RECORDS_MAX, metadata={"batch": 1})["value"] == gapless.RECORDS_MAX
    entries = IssuedValue.objects.filter(counter__owner=alice, counter__name="g")
    assert sorted(entries.values_list("value", flat=True)) == list(range(1, gapless.RECORDS_MAX + 1))
    assert all(entry == ("issued", {"batch": 1}) for entry in entries.values_list("status", "metadata"))
    assert take(alice_client, "g")["value"] == gapless.RECORDS_MAX + 1


def test_a_gapless_counter_with_a_log_is_not_deleted_by_the_api(alice, alice_client):
    create(alice_client, name="g", gapless=True)
    create(alice_client, name="empty", gapless=True)
    take(alice_client, "g")
    r = alice_client.delete(counter_url("g"))
    assert r.status_code == 409 and r.json()["code"] == "log_kept"
    assert Counter.objects.filter(owner=alice, name="g").exists() and len(log(alice, "g")) == 1
    assert alice_client.delete(counter_url("empty")).status_code == 204
    # the admin's delete (keep_log=False) takes the log with it
    services.counter_delete(owner_id=alice.id, name="g", keep_log=False)
    assert not IssuedValue.objects.exists()


@pytest.mark.parametrize(
    "metadata, message",
    [
        ([1, 2], 'Must be a JSON object, such as {"invoice": "A-1043"}.'),
        ("A-1", 'Must be a JSON object, such as {"invoice": "A-1043"}.'),
        ({"x": "é" * 1100}, "Must be at most 2048 bytes as JSON (this is 2208)."),
    ],
)
def test_metadata_that_is_not_a_small_object_is_a_400_and_takes_nothing(alice, alice_client, metadata, message):
    create(alice_client, **INVOICES)
    r = alice_client.post(counter_url("invoices", "/next"), {"metadata": metadata}, format="json")
    assert r.status_code == 400
    assert r.json() == {"detail": "Invalid input.", "code": "invalid_metadata", "fields": {"metadata": [message]}}
    assert log(alice) == [] and take(alice_client)["value"] == 1


def test_metadata_on_a_fast_counter_is_a_400_and_changes_nothing(alice, alice_client):
    r = alice_client.post(counter_url("default", "/next"), {"metadata": {"a": 1}}, format="json")
    assert r.status_code == 400
    assert r.json() == {
        "detail": "Invalid input.",
        "code": "not_gapless",
        "fields": {"metadata": ["This counter is not gapless: it keeps no record of each number, nor its metadata."]},
    }
    assert alice_client.get(counter_url("default")).json()["value"] == 0
    r = alice_client.get(counter_url("default", "/values"))
    assert r.status_code == 409
    assert r.json() == {"detail": "This counter is not gapless: it keeps no log of its numbers.", "code": "not_gapless"}


def test_scopes_apply_to_the_log_and_to_void(alice, api_client):
    services.counter_create(owner_id=alice.id, name="g", series=Series.of(gapless=True))
    services.counter_next(owner_id=alice.id, name="g")
    client, _ = key_client(api_client, alice, actions=["read"])
    assert client.get(counter_url("g", "/values")).status_code == 200
    r = client.post(counter_url("g", "/next"))
    assert r.status_code == 403 and r.json()["code"] == "api_key_scope"
    r = client.post(counter_url("g", "/values/1/void"), {"reason": "x"}, format="json")
    assert r.status_code == 403 and r.json()["code"] == "api_key_scope"
    other, _ = key_client(api_client, alice, counters=["default"])
    assert other.get(counter_url("g", "/values")).status_code == 403
    assert log(alice, "g") == [("", 1, "issued", None, "")]


def test_an_api_key_takes_numbers_and_the_log_names_it(alice, api_client):
    services.counter_create(owner_id=alice.id, name="g", series=Series.of(gapless=True))
    client, secret = key_client(api_client, alice, actions=["next", "read"])
    assert take(client, "g")["value"] == 1
    entry = client.get(counter_url("g", "/values/1")).json()
    assert entry["issued_by"] == {
        "user": "alice",
        "api_key": {"name": "billing", "prefix": secret[: secret.find(".") + 9]},
    }
    api_client.credentials(HTTP_AUTHORIZATION="Bearer inc_1.nope")
    assert api_client.post(counter_url("g", "/next")).status_code == 401


# --- Redis is not on the path -----------------------------------------------------------------


def test_a_known_gapless_next_makes_no_redis_round_trip(alice, alice_client, redis_round_trips):
    create(alice_client, name="g", gapless=True)
    take(alice_client, "g")  # this process knows it now
    redis_round_trips.clear()
    assert take(alice_client, "g")["value"] == 2
    assert alice_client.get(counter_url("g")).json()["value"] == 2
    assert redis_round_trips == []


def test_a_process_that_does_not_know_learns_it_from_redis_then_from_sql(alice, alice_client, private_redis):
    create(alice_client, name="g", gapless=True)
    known.clear()
    assert take(alice_client, "g")["value"] == 1  # its hash said so
    known.clear()
    redis_connection.client().flushall()
    assert take(alice_client, "g")["value"] == 2  # restored from SQL, then its hash said so
    known.clear()
    private_redis.stop()
    assert take(alice_client, "g")["value"] == 3  # Redis is down: SQL said so
    assert alice_client.get(counter_url("g")).json()["value"] == 3
    assert alice_client.get(counter_url("g", "/values")).json()["count"] == 3
    r = alice_client.post(counter_url("default", "/next"))  # a fast counter needs Redis
    assert r.status_code == 503 and r.json()["code"] == "counter_store_unavailable"


def test_with_redis_down_an_api_key_is_checked_in_sql(alice, api_client, private_redis):
    services.counter_create(owner_id=alice.id, name="g", series=Series.of(gapless=True))
    client, secret = key_client(api_client, alice)
    private_redis.stop()
    assert take(client, "g")["value"] == 1
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret[:-2]}xx")
    r = client.post(counter_url("g", "/next"))
    assert r.status_code == 401 and r.json()["code"] == "invalid_api_key"
    assert log(alice, "g") == [("", 1, "issued", None, "")]


def test_a_retry_with_the_same_key_gets_the_same_number_after_a_flush(alice, alice_client):
    create(alice_client, **INVOICES)
    headers = {"HTTP_IDEMPOTENCY_KEY": "inv-A-1043"}
    first = alice_client.post(counter_url("invoices", "/next"), {"metadata": {"i": 1}}, format="json", **headers)
    redis_connection.client().flushall()
    known.clear()
    again = alice_client.post(counter_url("invoices", "/next"), {"metadata": {"i": 1}}, format="json", **headers)
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert log(alice) == [(str(YEAR), 1, "issued", {"i": 1}, "")]
    other = alice_client.post(counter_url("invoices", "/next"), {"metadata": {"i": 2}}, format="json", **headers)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert take(alice_client)["value"] == 2


def test_a_counter_deleted_and_made_again_fast_is_not_taken_for_gapless(alice, alice_client):
    services.counter_create(owner_id=alice.id, name="g", series=Series.of(gapless=True))
    assert take(alice_client, "g")["value"] == 1
    services.counter_delete(owner_id=alice.id, name="g", keep_log=False)
    services.counter_create(owner_id=alice.id, name="g", value=10)
    known.learn(alice.id, "g", Series.of(gapless=True))  # another process still thinks so
    body = take(alice_client, "g")
    assert (body["value"], body["gapless"]) == (11, False)


# --- whatever fails ----------------------------------------------------------------------------


def _on_postgresql() -> bool:
    return connection.vendor == "postgresql"


@pytest.mark.django_db(transaction=True)
def test_many_threads_get_exactly_one_to_n_while_redis_is_flushed_killed_and_replaced(
    make_user, private_redis, tmp_path
):
    """24 threads take numbers of one gapless series, each with its own metadata, while Redis is
    flushed, killed, started again and replaced by an empty server, and processes forget what
    they knew (so calls route through Redis, or fall back to SQL). 200 each on PostgreSQL, where
    row locks are real (make test-postgres); 25 each on SQLite."""
    user = make_user()
    services.counter_create(
        owner_id=user.id, name="inv", series=Series.of("yearly", "Europe/Paris", "{value:06}", True)
    )
    threads, each = 24, 200 if _on_postgresql() else 25
    got: dict[int, dict] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()
    done = threading.Event()

    def work(t: int):
        try:
            for i in range(each):
                meta = {"thread": t, "i": i}
                state = services.counter_next(owner_id=user.id, name="inv", metadata=meta) if i % 2 else None
                if state is None:  # half without metadata: routed like any next (known, Redis or SQL)
                    state = services.counter_next(owner_id=user.id, name="inv")
                    meta = None
                with lock:
                    assert state.value not in got, state.value
                    got[state.value] = meta
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)
        finally:
            connection.close()

    def faults():
        servers = [private_redis]
        step = 0
        while not done.is_set():
            time.sleep(0.05)
            known.clear()
            step += 1
            current = servers[-1]
            if step % 4 == 0:
                redis_connection.client().flushall()
            elif step % 4 == 1:
                current.kill()
            elif step % 4 == 2:
                current.start()
            else:
                fresh = private_redis.use(RedisServer(tmp_path / f"fresh{step}").start())
                servers.append(fresh)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    chaos = threading.Thread(target=faults)
    chaos.start()
    for w in workers:
        w.start()
    for w in workers:
        w.join(600)
    done.set()
    chaos.join(30)
    assert errors == []
    n = threads * each
    assert sorted(got) == list(range(1, n + 1))
    entries = IssuedValue.objects.filter(counter__owner=user, counter__name="inv")
    recorded = dict(entries.values_list("value", "metadata"))
    assert recorded == got  # each number with the metadata of the request that got it
    assert set(entries.values_list("status", flat=True)) == {"issued"}
    assert services.counter_get(owner_id=user.id, name="inv").value == n


KILLED_IN_TRANSACTION = """
import sys, time, django
django.setup()
from counters import gapless

real = gapless._insert

def insert(entries):
    real(entries)  # the entry and the counter's new value are written, not committed
    print("inside", flush=True)
    time.sleep(120)

gapless._insert = insert
gapless.next_numbers(owner_id=int(sys.argv[1]), name="g", metadata={"killed": True})
"""


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_a_process_killed_in_the_middle_of_its_transaction_takes_no_number(make_user):
    user = make_user()
    services.counter_create(owner_id=user.id, name="g", series=Series.of(gapless=True))
    assert services.counter_next(owner_id=user.id, name="g").value == 1
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": _database_url()}
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_IN_TRANSACTION, str(user.id)],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "inside"
        # the row is locked by the child: PostgreSQL makes a second caller wait; SQLite's writer lock too
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    # number 2 was written and never committed: not taken at all, and the next caller gets it
    assert log(user, "g") == [("", 1, "issued", None, "")]
    assert services.counter_next(owner_id=user.id, name="g", metadata={"after": True}).value == 2
    assert log(user, "g") == [("", 1, "issued", None, ""), ("", 2, "issued", {"after": True}, "")]


def test_an_answer_lost_after_commit_is_asked_again_and_the_same_number_comes_back(service):
    """Through gunicorn and the client: the proxy reads the answer, Redis is flushed, and the
    proxy hangs up; the client's retry (same Idempotency-Key) gets the same number, and the
    counter moved by one. Then the same with the command, and a void whose answer is lost."""
    svc = service()
    direct = svc.client()
    direct.create("inv", gapless=True, reset="yearly", format="INV-{year}-{value:05}")
    flushed = []
    proxy = Proxy(svc.port, drop=1, on_drop=lambda: flushed.append(redis.Redis.from_url(svc.redis.url).flushall()))
    taken = svc.client(proxy.url).next("inv", metadata={"invoice": "A-1043"})
    assert (taken.value, taken.formatted, taken.replayed, taken.gapless) == (1, f"INV-{YEAR}-00001", True, True)
    assert proxy.seen == [("POST /api/counters/inv/next HTTP/1.1", 200)] * 2
    assert flushed == [True]
    [entry] = direct.values("inv")
    assert (entry.value, entry.metadata, entry.status) == (1, {"invoice": "A-1043"}, "issued")
    proxy.drop = 1
    done = svc.run("next", "inv", "--metadata", '{"invoice": "A-1044"}', url=proxy.url)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"INV-{YEAR}-00002\n", "")
    assert flushed == [True, True]
    assert [(e.value, e.metadata) for e in direct.values("inv")] == [
        (2, {"invoice": "A-1044"}),
        (1, {"invoice": "A-1043"}),
    ]
    proxy.drop, proxy.matching = 1, "/void"
    voided = svc.client(proxy.url).void("inv", 2, "customer cancelled")
    assert (voided.status, voided.void_reason) == ("voided", "customer cancelled")
    assert direct.current("inv").value == 2
    proxy.close()


# --- the web app and the admin -----------------------------------------------------------------


def test_the_web_app_creates_a_gapless_series_shows_its_log_and_voids_with_a_reason(alice, client):
    client.force_login(alice)
    form = {"name": "sales", "gapless": "true", "reset": "yearly", "format": "F{year}-{value:03}"}
    assert client.post("/counters", form).status_code == 302
    assert Counter.objects.get(owner=alice, name="sales").gapless is True
    client.post("/counters/sales/next")
    client.post("/counters/sales/next")
    home = client.get("/").text
    assert '<a href="/counters/sales/log">its log' in home
    page = client.get("/counters/sales/log")
    assert page.status_code == 200
    assert page.text.index(f"F{YEAR}-002") < page.text.index(f"F{YEAR}-001")  # newest first
    assert page.text.count('class="danger">Void') == 2
    refused = client.post("/counters/sales/log/1/void", {"reason": ""})
    assert refused.status_code == 400 and "This field may not be blank." in refused.text
    done = client.post("/counters/sales/log/1/void", {"reason": "printer jam"})
    assert (done.status_code, done["Location"]) == (302, "/counters/sales/log#v-1")
    again = client.post("/counters/sales/log/1/void", {"reason": "again"})
    assert again.status_code == 302
    assert log(alice, "sales") == [(str(YEAR), 1, "voided", None, "printer jam"), (str(YEAR), 2, "issued", None, "")]
    entry = IssuedValue.objects.get(value=1)
    assert (entry.surface, entry.voided_by, entry.issued_by) == ("web", alice, alice)
    shown = client.get("/counters/sales/log").text
    assert "printer jam" in shown and shown.count('class="danger">Void') == 1
    # its delete is refused, in the API's words
    refused = client.post("/counters/sales/delete")
    assert refused.status_code == 409 and "its log is kept" in refused.text
    assert client.get("/counters/default/log").status_code == 404  # a fast counter has no log
    # 50 entries a page, with the pager the dashboard has (web/_pager.html)
    gapless.next_numbers(owner_id=alice.id, name="sales", step=60)
    first, second = client.get("/counters/sales/log").text, client.get("/counters/sales/log?page=2").text
    assert "Page 1 of 2" in first and '<a href="?page=2" rel="next">Next page</a>' in first
    assert "Page 2 of 2" in second and '<a href="?page=1" rel="prev">Previous</a>' in second
    assert f"F{YEAR}-062" in first and f"F{YEAR}-001" in second


def test_the_admin_shows_the_log_read_only_filtered_by_status_and_period(alice, admin_client):
    services.counter_create(owner_id=alice.id, name="sales", series=Series.of("yearly", gapless=True))
    services.counter_next(owner_id=alice.id, name="sales", day=date(2025, 5, 1))
    services.counter_next(owner_id=alice.id, name="sales", day=date(2026, 5, 1), metadata={"x": 1})
    gapless.void(owner_id=alice.id, name="sales", value=1, day=date(2025, 1, 1), reason="lost")
    row = Counter.objects.get(owner=alice, name="sales")
    page = admin_client.get(f"/admin/counters/counter/{row.pk}/change/").text
    assert f'?counter__id__exact={row.pk}">1 issued, 1 voided</a>' in page
    voided = admin_client.get("/admin/counters/issuedvalue/?status__exact=voided").text
    assert "lost" in voided and voided.count('class="field-formatted"') == 1
    in_2026 = admin_client.get("/admin/counters/issuedvalue/?period=2026").text
    assert in_2026.count('class="field-formatted"') == 1
    entry = IssuedValue.objects.get(period="2026")
    assert admin_client.post(f"/admin/counters/issuedvalue/{entry.pk}/change/", {"void_reason": "x"}).status_code == 403
    assert admin_client.post(f"/admin/counters/issuedvalue/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    # the admin may delete the counter, and its log goes with it
    assert admin_client.post(f"/admin/counters/counter/{row.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not IssuedValue.objects.exists()


def test_the_browsable_api_shows_the_log_pages(alice):
    from tests.test_browsable_api import logged_in

    services.counter_create(owner_id=alice.id, name="g", series=Series.of(gapless=True))
    services.counter_next(owner_id=alice.id, name="g", metadata={"invoice": "A-9"})
    client = logged_in(alice)
    page = client.get("/api/counters/g/values", HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and "<h1>Log</h1>" in page.text and "A-9" in page.text
    one = client.get("/api/counters/g/values/1", HTTP_ACCEPT="text/html")
    assert one.status_code == 200 and "<h1>Number</h1>" in one.text
    void = client.get("/api/counters/g/values/1/void", HTTP_ACCEPT="text/html")
    assert void.status_code == 405 and 'name="reason"' in void.text  # its form, to POST a reason
    token = client.cookies["csrftoken"].value
    r = client.post(
        "/api/counters/g/values/1/void", {"reason": "typo"}, HTTP_ACCEPT="text/html", HTTP_X_CSRFTOKEN=token
    )
    assert r.status_code == 200
    assert log(alice, "g") == [("", 1, "voided", {"invoice": "A-9"}, "typo")]


def test_a_new_format_prints_the_next_number_in_a_process_that_knew_the_old(alice, alice_client):
    create(alice_client, name="g", gapless=True, format="A-{value}")
    assert take(alice_client, "g")["formatted"] == "A-1"
    r = alice_client.patch(counter_url("g"), {"format": "B-{value:03}"}, format="json")
    assert r.status_code == 200 and r.json()["formatted"] == "B-001"
    gapless.rows.keep(alice.id, "g", Counter.objects.get(owner=alice, name="g"))  # as another process kept it
    Counter.objects.filter(owner=alice, name="g").update(format="C-{value}")  # changed since
    assert take(alice_client, "g")["formatted"] == "C-2"
    assert [e["formatted"] for e in alice_client.get(counter_url("g", "/values")).json()["results"]] == ["C-2", "A-1"]
