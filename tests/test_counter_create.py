import pytest

from counters.models import Counter
from incrementific.redis import connection
from tests.helpers import MAX, NO_CREDENTIALS, NOT_INTEGERS, redis_value


def test_it_creates_a_counter_at_zero(alice_client, alice):
    r = alice_client.post("/api/counters", {"name": "invoices"}, format="json")
    assert r.status_code == 201
    body = r.json()
    row = Counter.objects.get(owner=alice, name="invoices")
    assert body == {
        "name": "invoices",
        "value": 0,
        "formatted": "0",
        "period": None,
        "reset": None,
        "timezone": "UTC",
        "format": None,
        "gapless": False,
        "created_at": row.created_at.isoformat().replace("+00:00", "Z"),
        "url": "http://testserver/api/counters/invoices",
    }
    assert r["Location"] == body["url"]
    assert redis_value(alice, "invoices") == 0


@pytest.mark.parametrize("value", [0, 1, 1000, MAX])
def test_it_creates_a_counter_at_a_value(alice_client, alice, value):
    r = alice_client.post("/api/counters/", {"name": "builds", "value": value}, format="json")
    assert r.status_code == 201
    assert r.json()["value"] == value
    assert redis_value(alice, "builds") == value


def test_a_form_post_takes_ascii_digits(alice_client, alice):
    r = alice_client.post("/api/counters", {"name": "tickets", "value": "0042"})
    assert r.status_code == 201
    assert r.json()["value"] == 42


@pytest.mark.parametrize("name", ["a", "A-Z_a.z-0.9", "x" * 64, "default2", "...", ".a", "a..", "-"])
def test_it_accepts_every_valid_name(alice_client, alice, name):
    assert alice_client.post("/api/counters", {"name": name}, format="json").status_code == 201
    assert redis_value(alice, name) == 0


def test_an_existing_name_is_a_409_and_changes_nothing(alice_client, alice):
    alice_client.post("/api/counters", {"name": "builds", "value": 7}, format="json")
    r = alice_client.post("/api/counters", {"name": "builds", "value": 9}, format="json")
    assert r.status_code == 409
    assert r.json() == {"detail": "A counter with this name already exists.", "code": "counter_exists"}
    assert redis_value(alice, "builds") == 7
    assert Counter.objects.filter(owner=alice).count() == 2  # default and builds


def test_another_user_may_use_the_same_name(alice_client, bob):
    r = alice_client.post("/api/counters", {"name": "default"}, format="json")
    assert r.status_code == 409  # alice has one already
    assert Counter.objects.filter(owner=bob, name="default").exists()


def test_no_credentials_is_a_401(api_client, db):
    r = api_client.post("/api/counters", {"name": "x"}, format="json")
    assert r.status_code == 401
    assert r.json() == NO_CREDENTIALS
    assert not Counter.objects.exists()


@pytest.mark.parametrize(
    "name",
    [
        "",
        "x" * 65,
        "has space",
        "slash/es",
        "semi;colon",
        "quote'",
        "ünïcode",
        "new\nline",
        " lead",
        5,
        None,
        ".",
        "..",
    ],
)
def test_a_bad_name_is_a_400(alice_client, alice, name):
    r = alice_client.post("/api/counters", {"name": name}, format="json")
    assert r.status_code == 400
    assert r.json()["code"] == "invalid"
    assert list(r.json()["fields"]) == ["name"]
    assert list(Counter.objects.filter(owner=alice).values_list("name", flat=True)) == ["default"]


@pytest.mark.parametrize("name", [".", ".."])
def test_a_name_that_is_a_path_step_is_a_400(alice_client, alice, name):
    # curl asks for /api/counters/.. as /api/: such a counter could never be reached by its URL.
    r = alice_client.post("/api/counters", {"name": name}, format="json")
    message = "Use 1 to 64 characters: letters, digits, '_', '.' or '-', and not '.' or '..' alone."
    assert (r.status_code, r.json()) == (
        400,
        {"detail": "Invalid input.", "code": "invalid", "fields": {"name": [message]}},
    )
    assert list(Counter.objects.filter(owner=alice).values_list("name", flat=True)) == ["default"]


@pytest.mark.parametrize("value", [*NOT_INTEGERS, -1, MAX + 1])
def test_a_bad_value_is_a_400(alice_client, alice, value):
    r = alice_client.post("/api/counters", {"name": "x", "value": value}, format="json")
    assert r.status_code == 400
    assert list(r.json()["fields"]) == ["value"]
    assert not Counter.objects.filter(owner=alice, name="x").exists()
    assert redis_value(alice, "x") is None


def test_a_body_that_is_not_an_object_is_a_400(alice_client):
    r = alice_client.post("/api/counters", [1, 2], format="json")
    assert r.status_code == 400
    assert r.json() == {
        "detail": "Invalid input.",
        "code": "invalid",
        "fields": {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]},
    }


def test_a_token_that_outlived_its_user_cannot_create(alice_client, alice, redis_conn):
    user_id = alice.id
    alice.delete()
    r = alice_client.post("/api/counters", {"name": "orphan"}, format="json")
    assert r.status_code == 401
    assert r.json() == {"detail": "Token has been revoked.", "code": "token_revoked"}
    # and should the revocation mark be gone (Redis forgot it), the service still refuses: fenced,
    # it puts SQL's mark back (which outlives the user); on one server, it finds no user
    redis_conn.delete(f"ctr:{{u{user_id}}}:~revoked")
    r = alice_client.post("/api/counters", {"name": "orphan"}, format="json")
    assert r.status_code == 401
    if connection.fenced():
        assert r.json() == {"detail": "Token has been revoked.", "code": "token_revoked"}
    else:
        assert r.json() == {"detail": "User not found.", "code": "user_not_found"}
    assert not Counter.objects.filter(name="orphan").exists()
