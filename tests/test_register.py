import pytest
from django.contrib.auth import get_user_model

from counters import store
from counters.models import Counter

URL = "/api/auth/register"
GOOD = {"username": "carol", "password": "correct-horse-battery", "email": "carol@example.com"}


@pytest.mark.django_db
def test_it_creates_the_user_with_tokens_and_a_default_counter(api_client):
    r = api_client.post(URL, GOOD, format="json")
    assert r.status_code == 201
    user = get_user_model().objects.get(username="carol")
    assert set(r.json()) == {"id", "username", "email", "access", "refresh"}
    assert r.json()["id"] == user.id
    assert (r.json()["username"], r.json()["email"]) == ("carol", "carol@example.com")
    assert user.check_password("correct-horse-battery")
    assert list(Counter.objects.filter(owner=user).values_list("name", flat=True)) == ["default"]
    assert store.get(user.id, "default").value == 0
    me = api_client.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {r.json()['access']}")
    assert me.json() == {"id": user.id, "username": "carol", "email": "carol@example.com"}


@pytest.mark.django_db
def test_email_is_optional(api_client):
    r = api_client.post(URL, {"username": "dave", "password": "correct-horse-battery"}, format="json")
    assert r.status_code == 201
    assert r.json()["email"] == ""


@pytest.mark.django_db
def test_it_works_without_the_trailing_slash_and_with_it(api_client):
    assert api_client.post(URL + "/", GOOD, format="json").status_code == 201


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, field",
    [
        ({"password": "correct-horse-battery"}, "username"),
        ({"username": "erin"}, "password"),
        ({"username": "erin", "password": "short"}, "password"),
        ({"username": "erin", "password": "password"}, "password"),
        ({"username": "erin", "password": "12345678901"}, "password"),
        ({"username": "erinsmith", "password": "erinsmith1"}, "password"),
        ({"username": "bad name!", "password": "correct-horse-battery"}, "username"),
        ({"username": "erin", "password": "correct-horse-battery", "email": "nope"}, "email"),
    ],
)
def test_it_rejects_bad_input_and_creates_nothing(api_client, body, field):
    r = api_client.post(URL, body, format="json")
    assert r.status_code == 400
    assert r.json()["code"] == "invalid"
    assert r.json()["detail"] == "Invalid input."
    assert list(r.json()["fields"]) == [field]
    assert not get_user_model().objects.exists()


@pytest.mark.django_db
def test_password_validator_messages_are_returned(api_client):
    r = api_client.post(URL, {"username": "erin", "password": "short"}, format="json")
    assert r.json()["fields"]["password"] == ["This password is too short. It must contain at least 8 characters."]


@pytest.mark.django_db
def test_every_invalid_field_is_reported_at_once(api_client, alice):
    for username, username_errors in [
        (
            "not a name!",
            ["Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."],
        ),
        ("Alice", ["A user with that username already exists."]),
    ]:
        r = api_client.post(URL, {"username": username, "password": "123", "email": "nope"}, format="json")
        assert r.status_code == 400
        assert r.json()["fields"] == {
            "username": username_errors,
            "password": [
                "This password is too short. It must contain at least 8 characters.",
                "This password is too common.",
                "This password is entirely numeric.",
            ],
            "email": ["Enter a valid email address."],
        }
    assert get_user_model().objects.count() == 1


@pytest.mark.django_db
def test_the_password_may_not_resemble_the_username_even_when_the_username_is_refused(api_client):
    r = api_client.post(URL, {"username": "margaret-hamilton!", "password": "margaret-hamilton!"}, format="json")
    assert r.json()["fields"]["password"] == ["The password is too similar to the username."]


@pytest.mark.django_db
def test_an_existing_username_is_refused_whatever_its_case(api_client, alice):
    r = api_client.post(URL, {**GOOD, "username": "ALICE"}, format="json")
    assert r.status_code == 400
    assert r.json() == {
        "detail": "Invalid input.",
        "code": "invalid",
        "fields": {"username": ["A user with that username already exists."]},
    }
    assert get_user_model().objects.count() == 1


@pytest.mark.django_db
def test_a_redis_outage_is_a_503_and_creates_no_user(api_client, private_redis):
    private_redis.stop()
    r = api_client.post(URL, GOOD, format="json")
    assert r.status_code == 503
    assert r.json() == {"detail": "Counter storage is unavailable, try again.", "code": "counter_store_unavailable"}
    assert not get_user_model().objects.exists()
    assert not Counter.objects.exists()
