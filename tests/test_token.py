import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from django.conf import settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from incrementific.redis.keys import counter as key

PASSWORD = "a-long-enough-passphrase"
BAD_TOKEN = {"detail": "Given token not valid for any token type", "code": "token_not_valid"}


def login(client, username="alice", password=PASSWORD):
    return client.post("/api/auth/token", {"username": username, "password": password}, format="json")


@pytest.mark.django_db
def test_it_issues_a_token_pair_that_works(api_client, alice):
    r = login(api_client)
    assert r.status_code == 200
    assert set(r.json()) == {"access", "refresh"}
    me = api_client.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {r.json()['access']}")
    assert me.status_code == 200
    assert me.json()["username"] == "alice"


@pytest.mark.django_db
def test_wrong_password_and_unknown_user_get_the_same_answer(api_client, alice):
    wrong = login(api_client, password="not-the-password")
    unknown = login(api_client, username="nobody")
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {
            "detail": "No active account found with the given credentials",
            "code": "no_active_account",
        }
    )


@pytest.mark.django_db
def test_missing_fields_are_a_400(api_client):
    r = api_client.post("/api/auth/token", {"username": "alice"}, format="json")
    assert r.status_code == 400
    assert r.json()["fields"] == {"password": ["This field is required."]}


@pytest.mark.django_db
def test_refresh_rotates_and_a_used_refresh_token_is_refused(api_client, alice):
    first = login(api_client).json()["refresh"]
    r = api_client.post("/api/auth/token/refresh", {"refresh": first}, format="json")
    assert r.status_code == 200
    assert set(r.json()) == {"access", "refresh"}
    assert r.json()["refresh"] != first
    again = api_client.post("/api/auth/token/refresh/", {"refresh": first}, format="json")
    assert again.status_code == 401
    assert again.json() == {"detail": "Token is blacklisted", "code": "token_not_valid"}
    newest = api_client.post("/api/auth/token/refresh", {"refresh": r.json()["refresh"]}, format="json")
    assert newest.status_code == 200


@pytest.mark.django_db
def test_logout_revokes_the_refresh_token(api_client, alice):
    refresh = login(api_client).json()["refresh"]
    r = api_client.post("/api/auth/logout", {"refresh": refresh}, format="json")
    assert r.status_code == 204
    assert r.content == b""
    after = api_client.post("/api/auth/token/refresh", {"refresh": refresh}, format="json")
    assert after.status_code == 401
    assert after.json()["code"] == "token_not_valid"


@pytest.mark.django_db
def test_logout_with_a_bad_token_is_a_401(api_client):
    r = api_client.post("/api/auth/logout", {"refresh": "garbage"}, format="json")
    assert r.status_code == 401
    assert r.json() == {"detail": "Token is invalid", "code": "token_not_valid"}


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _forged_tokens(user):
    good = AccessToken.for_user(user)
    claims = dict(good.payload)
    header, payload, signature = str(good).split(".")
    expired = AccessToken.for_user(user)
    expired.set_exp(lifetime=-timedelta(seconds=1))
    tampered_claims = {**claims, "user_id": str(user.id + 1)}
    signing_key = settings.SIMPLE_JWT["SIGNING_KEY"]
    return {
        "expired": str(expired),
        "tampered": f"{header}.{_b64(tampered_claims)}.{signature}",
        "other key": jwt.encode(claims, "another-secret-key-of-enough-length", algorithm="HS256"),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "refresh as access": str(RefreshToken.for_user(user)),
        "other issuer": jwt.encode({**claims, "iss": "someone-else"}, signing_key, algorithm="HS256"),
        "other audience": jwt.encode({**claims, "aud": "another-api"}, signing_key, algorithm="HS256"),
        "no issuer": jwt.encode({k: v for k, v in claims.items() if k != "iss"}, signing_key, algorithm="HS256"),
        "signed with SECRET_KEY": jwt.encode(claims, settings.SECRET_KEY, algorithm="HS256"),
        "HS512": jwt.encode(claims, signing_key, algorithm="HS512"),
        "not a jwt": "abc.def",
    }


FORGERIES = [
    "expired",
    "tampered",
    "other key",
    "alg none",
    "refresh as access",
    "not a jwt",
    "other issuer",
    "other audience",
    "no issuer",
    "signed with SECRET_KEY",
    "HS512",
]


@pytest.mark.django_db
@pytest.mark.parametrize("kind", FORGERIES)
def test_bad_access_tokens_are_a_401_everywhere(api_client, alice, kind, redis_conn):
    token = _forged_tokens(alice)[kind]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    for method, path in [("get", "/api/auth/me"), ("get", "/api/counters"), ("post", "/api/counters/default/next")]:
        r = getattr(api_client, method)(path, **auth)
        assert r.status_code == 401, (kind, path)
        assert r.json() == BAD_TOKEN
        assert r["WWW-Authenticate"] == 'Bearer realm="api"'
    assert redis_conn.hget(key(alice.id, "default"), "v") == b"0"


def test_tokens_carry_issuer_and_audience(alice):
    encoded = str(AccessToken.for_user(alice))  # simplejwt adds both claims when it encodes
    claims = jwt.decode(encoded, options={"verify_signature": False})
    assert (claims["iss"], claims["aud"]) == ("incrementific", "incrementific-api")
    assert jwt.get_unverified_header(encoded)["alg"] == "HS256"


@pytest.mark.django_db
def test_a_deactivated_user_cannot_refresh_or_log_in(api_client, alice):
    refresh = login(api_client).json()["refresh"]
    alice.is_active = False
    alice.save()
    r = api_client.post("/api/auth/token/refresh", {"refresh": refresh}, format="json")
    assert r.status_code == 401
    assert r.json() == {"detail": "No active account found for the given token.", "code": "no_active_account"}
    assert login(api_client).status_code == 401


@pytest.mark.django_db
def test_a_token_that_worked_is_refused_once_it_expires(api_client, alice, monkeypatch):
    token = AccessToken.for_user(alice)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert api_client.get("/api/auth/me", **auth).status_code == 200  # verified, and remembered
    later = token["exp"] + 1
    monkeypatch.setattr("time.time", lambda: later)
    monkeypatch.setattr("rest_framework_simplejwt.tokens.aware_utcnow", lambda: datetime.fromtimestamp(later, UTC))
    r = api_client.get("/api/auth/me", **auth)
    assert r.status_code == 401
    assert r.json() == BAD_TOKEN
