"""Series (counters/series.py): a sequence per period, numbers in a document's shape.

The tests' block is 3, so a period's reservation is extended every few numbers."""

import re
import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from counters import series, services
from counters.models import Counter, CounterChange, CounterPeriod
from counters.series import PLAIN, Series, compile_format, known
from incrementific import idempotency
from incrementific.redis import connection as redis_connection
from incrementific.redis import keys
from incrementific.redis_server import RedisServer
from tests.helpers import counter_url

YEARLY = {"name": "invoices", "reset": "yearly", "timezone": "Europe/Paris", "format": "INV-{year}-{value:05}"}


def today_in(tz: str) -> date:
    return datetime.now(ZoneInfo(tz)).date()


def create(client, **body):
    r = client.post("/api/counters", body, format="json")
    assert r.status_code == 201, r.content
    return r.json()


def take(client, name="invoices", day: str | None = None, **headers):
    body = {} if day is None else {"date": day}
    r = client.post(counter_url(name, "/next"), body, format="json", **headers)
    assert r.status_code == 200, r.content
    return r.json()


# --- the template, the period, the date: pure ---------------------------------------------------


@pytest.mark.parametrize(
    "template, value, day, printed",
    [
        ("INV-{year}-{value:05}", 42, date(2026, 3, 9), "INV-2026-00042"),
        ("{yy}{month}{day}-{value}", 7, date(2026, 3, 9), "260309-7"),
        ("B{value:01}", 123, date(2026, 1, 1), "B123"),  # a width is a minimum
        ("{value:020}", 5, date(2026, 1, 1), "00000000000000000005"),
        ("{{literal}} {value} }}{{", 3, date(2026, 1, 1), "{literal} 3 }{"),
        ("{year}", 1, date(33, 1, 1), "0033"),
        ("№ {value} — ok|x", 9, date(2026, 1, 1), "№ 9 — ok|x"),
    ],
)
def test_a_format_prints_the_value_and_the_documents_date(template, value, day, printed):
    assert Series.of("yearly", "UTC", template).render(value, day) == printed


@pytest.mark.parametrize(
    "template, message",
    [
        ("{val}", "Unknown token {val}"),
        ("{value:5}", "Unknown token {value:5}"),
        ("{value:00}", "Unknown token {value:00}"),
        ("{value:021}", "The width in {value:021} must be from 1 to 20."),
        ("{ value }", "Unknown token { value }"),
        ("INV-{year", "Unbalanced '{' (write {{ for a brace)."),
        ("INV}", "Unbalanced '}' (write }} for a brace)."),
        ("{{value}", "Unbalanced '}' (write }} for a brace)."),
        ("a\nb", "Must not contain control characters (a line break, a tab, NUL)."),
        ("", "Must be 1 to 100 characters (or null, for the value alone)."),
        ("x" * 101, "Must be 1 to 100 characters (or null, for the value alone)."),
    ],
)
def test_a_bad_format_says_what_is_wrong(template, message):
    with pytest.raises(ValidationError) as caught:
        compile_format(template)
    assert caught.value.code == "invalid_format"
    assert caught.value.messages[0].startswith(message)


def _takes(template: str) -> bool:
    try:
        compile_format(template)
    except ValidationError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(alphabet=st.sampled_from("{}valuey:0129amdh-\n|"), max_size=30),
        st.from_regex(series.FORMAT_PATTERN, fullmatch=True).filter(lambda t: len(t) <= 100),
        st.text(max_size=40),
    )
)
def test_the_schemas_pattern_takes_exactly_what_the_service_takes(template):
    assert bool(re.fullmatch(series.FORMAT_PATTERN, template)) == _takes(template), template


@pytest.mark.parametrize(
    "reset, day, period",
    [
        (None, date(2026, 12, 31), None),
        ("yearly", date(2026, 12, 31), "2026"),
        ("monthly", date(2026, 2, 1), "2026-02"),
        ("daily", date(2026, 2, 1), "2026-02-01"),
    ],
)
def test_a_date_falls_in_one_period(reset, day, period):
    assert Series.of(reset).period(day) == period


def test_the_same_instant_is_two_days_on_either_side_of_the_date_line():
    # Kiritimati is UTC+14 and Pago Pago UTC-11: 25 hours apart, so one instant is two dates.
    instant = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
    kiritimati = instant.astimezone(ZoneInfo("Pacific/Kiritimati")).date()
    pago_pago = instant.astimezone(ZoneInfo("Pacific/Pago_Pago")).date()
    assert (kiritimati, pago_pago) == (date(2026, 6, 16), date(2026, 6, 15))
    assert Series.of("daily", "Pacific/Kiritimati").period(kiritimati) == "2026-06-16"
    assert Series.of("daily", "Pacific/Pago_Pago").period(pago_pago) == "2026-06-15"


@pytest.mark.parametrize(
    "text", ["2026-02-30", "2026-13-01", "0000-01-01", "2026-1-1", "20261231", "2026-12-31T00:00", ""]
)
def test_a_date_that_does_not_exist_or_is_not_yyyy_mm_dd_is_refused(text):
    with pytest.raises(ValidationError) as caught:
        series.parse_date(text)
    assert caught.value.code == "invalid_date"


@pytest.mark.parametrize(
    "settings_",
    [
        Series.of("yearly", "Europe/Paris", "INV-{year}|{value}"),
        Series.of(None, "UTC", "B-{value}"),
        Series.of("daily", "Pacific/Kiritimati", None),
        Series.of(None, "Asia/Tokyo", None),
    ],
)
def test_settings_travel_as_one_string_and_back(settings_):
    assert Series.decode(settings_.encoded()) == settings_
    assert Series.decode(PLAIN.encoded()) is PLAIN and PLAIN.encoded() == ""


# --- the API --------------------------------------------------------------------------------------


def test_a_series_is_created_with_its_settings_and_shows_them(alice_client, alice):
    body = create(alice_client, **YEARLY)
    year = today_in("Europe/Paris").year
    row = Counter.objects.get(owner=alice, name="invoices")
    assert body == {
        "name": "invoices",
        "value": 0,
        "formatted": f"INV-{year}-00000",
        "period": str(year),
        "reset": "yearly",
        "timezone": "Europe/Paris",
        "format": "INV-{year}-{value:05}",
        "gapless": False,
        "created_at": row.created_at.isoformat().replace("+00:00", "Z"),
        "url": "http://testserver/api/counters/invoices",
    }
    assert (row.reset, row.timezone, row.format, row.reserved_through) == (
        "yearly",
        "Europe/Paris",
        "INV-{year}-{value:05}",
        0,
    )
    assert alice_client.get(counter_url("invoices")).json() == body
    assert not CounterPeriod.objects.exists()  # a period gets its row with its first number


def test_each_period_is_a_sequence_of_its_own_picked_by_the_documents_date(alice_client, alice):
    create(alice_client, **YEARLY)
    assert [take(alice_client, day="2026-03-01")["formatted"] for _ in range(4)] == [
        "INV-2026-00001",
        "INV-2026-00002",
        "INV-2026-00003",
        "INV-2026-00004",
    ]
    first = take(alice_client, day="2027-01-02")
    assert (first["value"], first["period"], first["formatted"]) == (1, "2027", "INV-2027-00001")
    # a late invoice dated 31 December, taken on 2 January, goes into last year's sequence
    late = take(alice_client, day="2026-12-31")
    assert (late["value"], late["period"], late["formatted"]) == (5, "2026", "INV-2026-00005")
    assert take(alice_client, day="2027-01-01")["formatted"] == "INV-2027-00002"
    # each period reserves for itself: 1 + the block of 3, then 5 + 3
    assert dict(CounterPeriod.objects.values_list("period", "reserved_through")) == {"2026": 8, "2027": 4}


def test_without_a_date_next_is_in_todays_period_in_the_counters_time_zone(alice_client):
    create(alice_client, name="builds", reset="daily", timezone="Pacific/Kiritimati", format="{day}.{value}")
    body = take(alice_client, "builds")
    today = today_in("Pacific/Kiritimati")
    assert (body["value"], body["period"], body["formatted"]) == (1, today.isoformat(), f"{today.day:02d}.1")


def test_a_period_nobody_took_a_number_in_reads_0(alice_client, django_assert_num_queries):
    create(alice_client, **YEARLY)
    take(alice_client, day="2026-05-05")
    r = alice_client.get(counter_url("invoices") + "?date=2019-06-01")
    assert r.status_code == 200
    assert (r.json()["value"], r.json()["period"], r.json()["formatted"]) == (0, "2019", "INV-2019-00000")
    r = alice_client.get(counter_url("invoices") + "?date=2026-12-31")
    assert (r.json()["value"], r.json()["formatted"]) == (1, "INV-2026-00001")
    assert not CounterPeriod.objects.filter(period="2019").exists()  # a read writes nothing


def test_a_set_with_a_date_sets_that_period_and_the_history_says_which(alice_client, alice):
    create(alice_client, **YEARLY)
    r = alice_client.put(counter_url("invoices"), {"value": 417, "date": "2026-06-01"}, format="json")
    assert r.status_code == 200
    assert (r.json()["value"], r.json()["period"], r.json()["formatted"]) == (417, "2026", "INV-2026-00417")
    assert take(alice_client, day="2026-06-02")["formatted"] == "INV-2026-00418"
    assert take(alice_client, day="2025-06-02")["formatted"] == "INV-2025-00001"  # untouched
    history = alice_client.get(counter_url("invoices", "/history")).json()["results"]
    assert [(c["kind"], c["period"], c["old_value"], c["new_value"]) for c in history] == [
        ("set", "2026", 0, 417),
        ("create", str(today_in("Europe/Paris").year), None, 0),
    ]


def test_a_series_created_at_a_value_starts_its_current_period_there(alice_client, alice):
    create(alice_client, name="moved", value=41, reset="monthly", format="{year}/{month}-{value}")
    today = today_in("UTC")
    body = take(alice_client, "moved")
    assert (body["value"], body["formatted"]) == (42, f"{today.year}/{today.month:02d}-42")
    assert CounterPeriod.objects.get().reserved_through == 44  # 41 and the block of 3, reserved at create


def test_the_periods_of_a_series_newest_first(alice_client, alice):
    create(alice_client, **YEARLY)
    for day in ["2024-02-01", "2026-02-01", "2026-03-01", "2025-07-07"]:
        take(alice_client, day=day)
    r = alice_client.get(counter_url("invoices", "/periods"))
    assert r.status_code == 200
    assert r.json() == {
        "count": 3,
        "next": None,
        "previous": None,
        "results": [
            {"period": "2026", "value": 2, "formatted": "INV-2026-00002"},
            {"period": "2025", "value": 1, "formatted": "INV-2025-00001"},
            {"period": "2024", "value": 1, "formatted": "INV-2024-00001"},
        ],
    }
    assert alice_client.get(counter_url("default", "/periods")).json()["results"] == []
    assert alice_client.get(counter_url("nothing", "/periods")).status_code == 404


def test_a_format_is_changed_with_patch_and_reset_and_timezone_are_fixed(alice_client, alice):
    create(alice_client, **YEARLY)
    take(alice_client, day="2026-01-05")
    r = alice_client.patch(counter_url("invoices"), {"format": "F{yy}/{value:03}", "date": "2026-01-05"}, format="json")
    assert r.status_code == 200
    assert (r.json()["format"], r.json()["formatted"], r.json()["value"]) == ("F{yy}/{value:03}", "F26/001", 1)
    assert take(alice_client, day="2026-01-06")["formatted"] == "F26/002"
    for setting, other in [("reset", "monthly"), ("reset", None), ("timezone", "UTC")]:
        r = alice_client.patch(counter_url("invoices"), {setting: other}, format="json")
        assert r.status_code == 400
        assert r.json()["code"] == "setting_fixed"
        assert list(r.json()["fields"]) == [setting]
    # a body that repeats them as they are is fine (a client that sends back what it read)
    same = {"value": 10, "date": "2026-01-06", "reset": "yearly", "timezone": "Europe/Paris"}
    assert alice_client.put(counter_url("invoices"), same, format="json").json()["formatted"] == "F26/010"
    row = Counter.objects.get(owner=alice, name="invoices")
    assert (row.reset, row.timezone, row.format) == ("yearly", "Europe/Paris", "F{yy}/{value:03}")
    change = CounterChange.objects.get(kind="format")
    assert (change.old_format, change.new_format) == ("INV-{year}-{value:05}", "F{yy}/{value:03}")
    r = alice_client.patch(counter_url("invoices"), {"format": None}, format="json")
    assert (r.json()["format"], r.json()["formatted"]) == (None, str(r.json()["value"]))


def test_a_change_of_format_keeps_to_its_idempotency_key_and_a_bad_key_changes_nothing(alice_client, alice):
    """Found by schemathesis: a PATCH without a value never read its Idempotency-Key, so a
    malformed one was a 200, and one with a value changed the format before its key was refused."""
    create(alice_client, **YEARLY)
    url = counter_url("invoices")
    for body in ({"format": "A{value}"}, {"format": "A{value}", "value": 7}, {}):
        r = alice_client.patch(url, body, format="json", HTTP_IDEMPOTENCY_KEY="bad\x85")
        assert r.status_code == 400, (body, r.content)
        assert r.json()["fields"] == {"Idempotency-Key": [idempotency.MALFORMED]}
        row = Counter.objects.get(owner=alice, name="invoices")
        assert row.format == YEARLY["format"]
        assert alice_client.get(url).json()["value"] == 0
    first = alice_client.patch(url, {"format": "B{value}"}, format="json", HTTP_IDEMPOTENCY_KEY="f1")
    assert (first.status_code, first.json()["format"], first.json()["formatted"]) == (200, "B{value}", "B0")
    take(alice_client)
    again = alice_client.patch(url, {"format": "B{value}"}, format="json", HTTP_IDEMPOTENCY_KEY="f1")
    assert (again.status_code, again["Idempotent-Replayed"]) == (200, "true")
    assert again.content == first.content  # the first answer, although a number was taken since
    other = alice_client.patch(url, {"format": "C{value}"}, format="json", HTTP_IDEMPOTENCY_KEY="f1")
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert Counter.objects.get(owner=alice, name="invoices").format == "B{value}"
    assert CounterChange.objects.filter(kind="format").count() == 1


@pytest.mark.parametrize(
    "body, code, field",
    [
        ({"format": "INV-{nope}"}, "invalid_format", "format"),
        ({"format": "INV-{year"}, "invalid_format", "format"),
        ({"format": "INV-}"}, "invalid_format", "format"),
        ({"format": "{value:021}"}, "invalid_format", "format"),
        ({"format": ""}, "invalid_format", "format"),
        ({"timezone": "Mars/Olympus_Mons"}, "unknown_timezone", "timezone"),
        ({"timezone": "europe/paris"}, "unknown_timezone", "timezone"),
        ({"reset": "weekly"}, "invalid_reset", "reset"),
        ({"reset": ""}, "invalid_reset", "reset"),
    ],
)
def test_bad_settings_are_a_400_with_a_stable_code_and_create_nothing(alice_client, alice, body, code, field):
    r = alice_client.post("/api/counters", {"name": "bad", **body}, format="json")
    assert r.status_code == 400
    assert r.json()["code"] == code
    assert list(r.json()["fields"]) == [field]
    assert not Counter.objects.filter(owner=alice, name="bad").exists()


@pytest.mark.parametrize("day", ["2026-02-30", "2026-13-01", "31/12/2026", 20261231])
def test_a_date_that_does_not_exist_is_a_400_and_changes_nothing(alice_client, alice, day):
    create(alice_client, **YEARLY)
    for method, path in [("post", counter_url("invoices", "/next")), ("put", counter_url("invoices"))]:
        r = getattr(alice_client, method)(path, {"date": day, "value": 5}, format="json")
        assert r.status_code == 400
        assert (r.json()["code"], list(r.json()["fields"])) == ("invalid_date", ["date"])
    r = alice_client.get(counter_url("invoices") + f"?date={day}")
    assert (r.status_code, r.json()["code"]) == (400, "invalid_date")
    assert not CounterPeriod.objects.exists()


def test_a_replay_with_a_date_answers_the_same_and_another_date_is_another_request(alice_client):
    create(alice_client, **YEARLY)
    first = alice_client.post(
        counter_url("invoices", "/next"), {"date": "2026-12-31"}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    known.clear()  # another process answers the retry
    again = alice_client.post(
        counter_url("invoices", "/next"), {"date": "2026-12-31"}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert first.json()["formatted"] == "INV-2026-00001"
    other = alice_client.post(
        counter_url("invoices", "/next"), {"date": "2027-01-01"}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert take(alice_client, day="2026-12-31")["value"] == 2  # the replay took nothing


def test_plain_text_is_the_formatted_value(alice_client):
    create(alice_client, **YEARLY)
    r = alice_client.post(
        counter_url("invoices", "/next"), {"date": "2026-04-01"}, format="json", HTTP_ACCEPT="text/plain"
    )
    assert (r.status_code, r["Content-Type"], r.content) == (200, "text/plain; charset=utf-8", b"INV-2026-00001\n")
    r = alice_client.get(counter_url("invoices") + "?date=2026-04-01", HTTP_ACCEPT="text/plain")
    assert r.content == b"INV-2026-00001\n"


def test_the_list_shows_each_counters_current_period(alice_client):
    create(alice_client, **YEARLY)
    take(alice_client)
    results = {c["name"]: c for c in alice_client.get("/api/counters").json()["results"]}
    year = today_in("Europe/Paris").year
    assert (results["invoices"]["value"], results["invoices"]["formatted"]) == (1, f"INV-{year}-00001")
    assert (results["default"]["formatted"], results["default"]["period"]) == ("0", None)


# --- one round trip, and a process that learns -------------------------------------------------


def test_the_steady_next_of_a_series_is_one_round_trip_and_no_sql(alice, django_assert_num_queries, redis_round_trips):
    services.counter_create(owner_id=alice.id, name="inv", series=Series.of("monthly", "Europe/Paris", "{value}"))
    services.counter_next(owner_id=alice.id, name="inv")  # the period's first number reserves
    redis_round_trips.clear()
    with django_assert_num_queries(0):
        assert services.counter_next(owner_id=alice.id, name="inv").value == 2
    assert redis_round_trips == ["evalsha"]


def test_a_process_that_does_not_know_a_series_learns_it_in_one_round_trip_more(alice, redis_round_trips):
    services.counter_create(owner_id=alice.id, name="inv", series=Series.of("yearly", "UTC", "I{value}"))
    services.counter_next(owner_id=alice.id, name="inv")
    known.clear()
    redis_round_trips.clear()
    state = services.counter_next(owner_id=alice.id, name="inv")
    assert (state.value, state.formatted) == (2, "I2")
    assert redis_round_trips == ["evalsha", "evalsha"]  # told the settings, then the call again
    redis_round_trips.clear()
    services.counter_next(owner_id=alice.id, name="inv")
    assert redis_round_trips == ["evalsha"]


def test_a_process_with_out_of_date_settings_is_told_and_changes_nothing_on_the_way(alice):
    services.counter_create(owner_id=alice.id, name="inv", series=Series.of("yearly", "UTC", "A{value}"))
    services.counter_next(owner_id=alice.id, name="inv", day=date(2026, 1, 1))
    # as if another process had deleted it and made a plain counter of the same name since
    known.learn(alice.id, "inv", Series.of("yearly", "UTC", "A{value}"))
    services.counter_delete(owner_id=alice.id, name="inv")
    services.counter_create(owner_id=alice.id, name="inv", value=7)
    known.learn(alice.id, "inv", Series.of("daily", "UTC", "stale"))
    state = services.counter_next(owner_id=alice.id, name="inv")
    assert (state.value, state.formatted, state.period) == (8, "8", None)
    assert known.get(alice.id, "inv") is PLAIN


# --- concurrency and faults ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_threads_in_one_period_and_in_two_get_exactly_1_to_n_each(make_user):
    user = make_user()
    services.counter_create(owner_id=user.id, name="inv", series=Series.of("yearly", "UTC", None))
    threads, per_thread = 8, 40
    got: dict[str, list[int]] = {"2026": [], "2027": []}
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def work(slot):
        barrier.wait()
        try:
            for i in range(per_thread):
                # half the threads in one period, half alternating between the two
                year = 2026 if slot % 2 == 0 or i % 2 == 0 else 2027
                state = services.counter_next(owner_id=user.id, name="inv", day=date(year, 6, 1))
                with lock:
                    got[state.period].append(state.value)
        finally:
            connection.close()

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert sorted(got["2026"]) == list(range(1, len(got["2026"]) + 1))
    assert sorted(got["2027"]) == list(range(1, len(got["2027"]) + 1))
    assert len(got["2026"]) + len(got["2027"]) == threads * per_thread and got["2027"]


def _values(user, name, years) -> dict[int, int]:
    return {y: services.counter_next(owner_id=user.id, name=name, day=date(y, 3, 3)).value for y in years}


def test_a_flush_in_the_middle_of_a_period_resumes_above_and_repeats_nothing(alice, private_redis, settings):
    services.counter_create(owner_id=alice.id, name="inv", series=Series.of("yearly", "UTC", "{value}"))
    for _ in range(5):
        before = _values(alice, "inv", [2025, 2026])
    assert before == {2025: 5, 2026: 5}
    redis_connection.client().flushall()
    after = _values(alice, "inv", [2025, 2026, 2027])
    # each period resumes above its own reservation (5 + a block at most), and a new one at 1
    assert after[2025] > 5 and after[2026] > 5 and after[2027] == 1
    assert after[2025] <= 5 + settings.COUNTER_BLOCK_SIZE + 1
    # the settings came back with the counter: the answer is still formatted
    state = services.counter_get(owner_id=alice.id, name="inv", day=date(2026, 3, 3))
    assert (state.value, state.formatted) == (after[2026], str(after[2026]))


def test_a_new_empty_server_in_the_middle_of_a_period_resumes_above(alice, private_redis, tmp_path):
    services.counter_create(owner_id=alice.id, name="inv", series=Series.of("monthly", "UTC", None))
    for _ in range(4):
        before = _values(alice, "inv", [2026])
    private_redis.use(RedisServer(tmp_path / "fresh").start())
    private_redis.stop()
    known.clear()  # a fresh process, too
    assert _values(alice, "inv", [2026])[2026] > before[2026]


def test_a_restart_from_the_aof_in_the_middle_of_a_period_loses_nothing(alice, private_redis):
    services.counter_create(owner_id=alice.id, name="inv", series=Series.of("daily", "UTC", None))
    for _ in range(4):
        _values(alice, "inv", [2026])
    private_redis.kill()
    private_redis.start()
    assert _values(alice, "inv", [2026]) == {2026: 5}  # appendfsync always: exactly where it was


def test_a_period_overflows_alone(alice_client, alice):
    create(alice_client, **YEARLY)
    assert (
        alice_client.put(counter_url("invoices"), {"value": 2**63 - 1, "date": "2026-01-01"}, format="json").status_code
        == 200
    )
    r = alice_client.post(counter_url("invoices", "/next"), {"date": "2026-01-01"}, format="json")
    assert (r.status_code, r.json()["code"]) == (409, "counter_overflow")
    assert take(alice_client, day="2027-01-01")["value"] == 1


def test_a_series_keys_stay_in_the_owners_slot(alice, redis_conn):
    services.counter_create(owner_id=alice.id, name="inv", series=Series.of("daily", "UTC", None))
    services.counter_next(owner_id=alice.id, name="inv", day=date(2026, 1, 1) + timedelta(days=3))
    fields = redis_conn.hgetall(keys.counter(alice.id, "inv"))
    assert fields[b"v:2026-01-04"] == b"1" and fields[b"s"] == b"daily|UTC|"
