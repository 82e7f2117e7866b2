import pytest

from counters import services
from tests.helpers import MAX, NO_CREDENTIALS, NOT_FOUND, NOT_INTEGERS, counter_url, redis_value


def test_it_shows_a_counter(alice_client, alice):
    services.counter_create(owner_id=alice.id, name="builds", value=41)
    r = alice_client.get(counter_url("builds"))
    assert r.status_code == 200
    assert r.json()["name"] == "builds"
    assert r.json()["value"] == 41
    assert r.json()["url"] == "http://testserver/api/counters/builds"
    assert alice_client.get(counter_url("builds", "/")).json() == r.json()


def test_its_url_is_the_one_the_request_came_by(alice_client, alice, settings):
    # Behind a TLS proxy: the scheme from the proxy's header, the host checked against ALLOWED_HOSTS.
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.ALLOWED_HOSTS = ["counters.example.com"]
    services.counter_create(owner_id=alice.id, name="a.b-c_9", value=1)
    via_proxy = {"HTTP_HOST": "counters.example.com:8443", "HTTP_X_FORWARDED_PROTO": "https"}
    r = alice_client.get(counter_url("a.b-c_9"), **via_proxy)
    assert (r.status_code, r.json()["url"]) == (200, "https://counters.example.com:8443/api/counters/a.b-c_9")
    r = alice_client.post(counter_url("a.b-c_9", "/next"), HTTP_HOST="evil.example")
    assert (r.status_code, r.json()) == (400, {"detail": "Bad request.", "code": "bad_request"})
    assert redis_value(alice, "a.b-c_9") == 1


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize("value", [0, 7, 1_000_000, MAX])
def test_it_sets_a_counter(alice_client, alice, method, value):
    r = getattr(alice_client, method)(counter_url("default"), {"value": value}, format="json")
    assert r.status_code == 200
    assert r.json()["value"] == value
    assert redis_value(alice, "default") == value
    assert alice_client.get(counter_url("default")).json()["value"] == value


def test_next_continues_from_a_set_value(alice_client, alice):
    alice_client.put(counter_url("default"), {"value": 1000}, format="json")
    assert alice_client.post(counter_url("default", "/next")).json()["value"] == 1001


def test_a_form_put_takes_ascii_digits(alice_client, alice):
    r = alice_client.put(counter_url("default"), "value=1000", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 200
    assert r.json()["value"] == 1000


@pytest.mark.parametrize("raw", ["5abc", "1.0", "1e3", "+5", " 5", "-1", "", "٣", "9223372036854775808"])
def test_a_bad_form_value_is_a_400(alice_client, alice, raw):
    r = alice_client.put(counter_url("default"), f"value={raw}", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 400
    assert list(r.json()["fields"]) == ["value"]
    assert redis_value(alice, "default") == 0


@pytest.mark.parametrize("value", [*NOT_INTEGERS, -1, MAX + 1])
def test_a_bad_value_is_a_400_and_changes_nothing(alice_client, alice, value):
    r = alice_client.put(counter_url("default"), {"value": value}, format="json")
    assert r.status_code == 400
    assert r.json()["code"] == "invalid"
    assert list(r.json()["fields"]) == ["value"]
    assert redis_value(alice, "default") == 0


def test_a_put_without_a_value_is_a_400_and_a_patch_without_one_sets_nothing(alice_client, alice):
    services.counter_set(owner_id=alice.id, name="default", value=4)
    r = alice_client.put(counter_url("default"), {}, format="json")
    assert r.status_code == 400
    assert r.json()["fields"] == {"value": ["This field is required."]}
    r = alice_client.patch(counter_url("default"), {}, format="json")
    assert (r.status_code, r.json()["value"]) == (200, 4)
    assert redis_value(alice, "default") == 4


def test_another_users_counter_is_a_404_like_a_missing_one(alice_client, bob):
    services.counter_create(owner_id=bob.id, name="secret", value=5)
    for name in ["secret", "nothing-here"]:
        assert alice_client.get(counter_url(name)).json() == NOT_FOUND
        r = alice_client.put(counter_url(name), {"value": 1}, format="json")
        assert r.status_code == 404
        assert r.json() == NOT_FOUND
    assert redis_value(bob, "secret") == 5


def test_no_credentials_is_a_401(api_client, alice):
    for r in [api_client.get(counter_url("default")), api_client.put(counter_url("default"), {"value": 3})]:
        assert r.status_code == 401
        assert r.json() == NO_CREDENTIALS
    assert redis_value(alice, "default") == 0


def test_an_invalid_name_in_the_path_is_a_404(alice_client):
    for path in ["/api/counters/" + "x" * 65, "/api/counters/a%20b", "/api/counters/a;drop", "/api/counters/%2e%2e"]:
        r = alice_client.get(path)
        assert r.status_code == 404
        assert r.json() == NOT_FOUND
