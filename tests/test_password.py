import pytest
from rest_framework.test import APIClient

from accounts.services import api_key_create

PASSWORD = "a-long-enough-passphrase"
NEW = "an-even-longer-passphrase"
URL = "/api/auth/password"


def login(client, password):
    return client.post("/api/auth/token", {"username": "alice", "password": password}, format="json")


@pytest.fixture
def logged_in(api_client, alice):
    tokens = login(api_client, PASSWORD).json()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    return client, tokens["refresh"]


def test_it_changes_the_password_and_refuses_old_refresh_tokens(api_client, alice, logged_in):
    client, refresh = logged_in
    r = client.post(URL, {"old_password": PASSWORD, "new_password": NEW}, format="json")
    assert r.status_code == 204
    alice.refresh_from_db()
    assert alice.check_password(NEW)
    assert login(api_client, PASSWORD).status_code == 401
    assert login(api_client, NEW).status_code == 200
    r = api_client.post("/api/auth/token/refresh", {"refresh": refresh}, format="json")
    assert r.status_code == 401
    assert r.json() == {"detail": "Token is blacklisted", "code": "token_not_valid"}


def test_a_wrong_old_password_changes_nothing(alice, logged_in):
    client, _ = logged_in
    r = client.post(URL, {"old_password": "not-it-at-all", "new_password": NEW}, format="json")
    assert r.status_code == 400
    assert r.json()["fields"] == {"old_password": ["That is not your password."]}
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


@pytest.mark.parametrize("new", ["short", "password", "12345678901", "alice"])
def test_the_new_password_meets_the_validators(alice, logged_in, new):
    client, _ = logged_in
    r = client.post(URL, {"old_password": PASSWORD, "new_password": new}, format="json")
    assert r.status_code == 400
    assert list(r.json()["fields"]) == ["new_password"]
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_an_api_key_cannot_change_the_password(alice):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(user_id=alice.id, name='k')[1]}")
    r = client.post(URL, {"old_password": PASSWORD, "new_password": NEW}, format="json")
    assert r.status_code == 403
    assert r.json()["code"] == "api_key_not_allowed"


def test_no_credentials_is_a_401(api_client, alice):
    r = api_client.post(URL, {"old_password": PASSWORD, "new_password": NEW}, format="json")
    assert r.status_code == 401
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)
