"""Single sign-on against a real OpenID Connect provider: panva's oidc-provider (tests/harness/oidc.py),
on a free port, started by these tests and stopped by its pid. Skipped, in one line, where
Node.js is missing (.ci/run installs it)."""

import json
import time
import urllib.parse

import jwt
import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from accounts import oidc
from accounts.models import ProviderIdentity
from counters.models import Counter
from tests.conftest import bearer
from tests.harness import oidc as harness

CALLBACK = "http://testserver/oidc/callback/"
BAD_TOKEN = {"detail": "Given token not valid for any token type", "code": "token_not_valid"}


@pytest.fixture(scope="module")
def node():
    reason = harness.missing()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def provider(node, tmp_path, settings):
    with harness.Provider(tmp_path / "provider", CALLBACK) as running:
        settings.OIDC_ISSUER = running.issuer
        settings.OIDC_CLIENT_ID = harness.CLIENT_ID
        settings.OIDC_CLIENT_SECRET = harness.CLIENT_SECRET
        settings.OIDC_PROVIDER_NAME = "Example ID"
        settings.OIDC_API_AUDIENCE = harness.AUDIENCE
        settings.OIDC_JWKS_REFRESH_SECONDS = 1
        yield running
    forget_the_provider()


def forget_the_provider():
    """A new process's view: no discovery document, no keys, no verified tokens."""
    oidc._discovery.__init__()
    oidc.keys.__init__()
    oidc._verified.cache_clear()


@pytest.fixture(autouse=True)
def _fresh_provider_state():
    forget_the_provider()


def log_in(client, username: str) -> object:
    """The whole flow without a browser: our app sends the browser to the provider, which logs
    it in (its own pages) and sends it back to our callback. Returns the callback's answer."""
    started = client.get("/oidc/authenticate/")
    assert started.status_code == 302, started.content
    location = started["Location"]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"] and query["nonce"]
    assert query["state"] and query["redirect_uri"] == [CALLBACK]
    back = harness.log_in_at_provider(location, username, CALLBACK)
    return client.get(back.removeprefix("http://testserver"))


def test_the_first_log_in_makes_an_account_and_later_ones_find_it(provider, client, db):
    answer = log_in(client, "ada")
    assert (answer.status_code, answer["Location"]) == (302, "/")
    home = client.get("/")
    assert home.status_code == 200 and "Welcome, ada." in home.text
    user = get_user_model().objects.get(username="ada")
    assert not user.has_usable_password()
    assert user.email == "ada@example.com"
    assert list(Counter.objects.filter(owner=user).values_list("name", flat=True)) == ["default"]
    identity = ProviderIdentity.objects.get(user=user)
    assert (identity.issuer, identity.subject) == (provider.issuer, "ada")
    client.logout()
    again = log_in(client, "ada")
    assert again.status_code == 302
    assert get_user_model().objects.filter(username__startswith="ada").count() == 1
    assert client.get("/account").status_code == 200


def test_a_person_s_access_token_on_the_api_is_the_account_of_their_web_log_in(provider, client, db, settings):
    settings.OIDC_STORE_ACCESS_TOKEN = True  # so that the test can read the token the log-in got
    assert log_in(client, "ada").status_code == 302
    token = client.session["oidc_access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == harness.AUDIENCE
    r = on_next(token)
    assert (r.status_code, r.json()["value"]) == (200, 1), r.content
    user = get_user_model().objects.get(username="ada")
    assert get_user_model().objects.count() == 1
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/auth/me").json()["username"] == "ada"
    assert Counter.objects.get(owner=user, name="default").owner_id == user.id


def test_an_account_is_never_found_by_e_mail_alone(provider, client, make_user):
    make_user("ada")  # a password account with the same username (and it could be the same e-mail)
    get_user_model().objects.filter(username="ada").update(email="ada@example.com")
    assert log_in(client, "ada").status_code == 302
    user = ProviderIdentity.objects.get(subject="ada").user
    assert user.username == "ada-2"
    assert get_user_model().objects.get(username="ada").provider_identities.count() == 0


def test_a_logged_in_owner_links_their_account_by_choice(provider, client, make_user):
    owner = make_user("grace")
    client.force_login(owner)
    page = client.get("/account")
    assert "Link your Example ID login" in page.text
    started = client.post("/account/link")
    assert (started.status_code, started["Location"]) == (302, "/oidc/authenticate/")
    assert log_in(client, "grace-at-work").status_code == 302
    identity = ProviderIdentity.objects.get(subject="grace-at-work")
    assert identity.user == owner
    assert get_user_model().objects.count() == 1
    assert "Your Example ID login is linked" in client.get("/account").text


def test_the_log_in_page_offers_the_provider_only_when_set_up(provider, client, db, settings):
    assert 'href="/oidc/authenticate/">Log in with Example ID</a>' in client.get("/login").text
    assert "Log in with Example ID" in client.get("/signup").text
    settings.OIDC_CLIENT_ID = ""
    assert "Log in with" not in client.get("/login").text
    assert client.get("/oidc/authenticate/").status_code == 404


def problem(answer) -> str:
    import re

    return re.search(r'<p role="alert">(.*?)</p>', answer.text, re.S).group(1)


def test_a_refusal_at_the_provider_is_a_page_and_makes_no_account(provider, client, db):
    started = client.get("/oidc/authenticate/")
    state = urllib.parse.parse_qs(urllib.parse.urlsplit(started["Location"]).query)["state"][0]
    answer = client.get(f"/oidc/callback/?error=access_denied&error_description=End-User+aborted&state={state}")
    assert answer.status_code == 400
    assert problem(answer) == "Example ID refused the log-in: End-User aborted."
    assert get_user_model().objects.count() == 0


def test_a_wrong_state_is_a_page_and_makes_no_account(provider, client, db):
    started = client.get("/oidc/authenticate/")
    back = harness.log_in_at_provider(started["Location"], "mallory", CALLBACK)
    forged = back.replace("state=", "state=x")
    answer = client.get(forged.removeprefix("http://testserver"))
    assert answer.status_code == 400
    assert problem(answer) == "This log-in link is not valid here (it was used, or started in another browser)."
    assert get_user_model().objects.count() == 0


def test_a_used_code_is_a_page_and_makes_no_second_account(provider, client, db):
    started = client.get("/oidc/authenticate/")
    back = harness.log_in_at_provider(started["Location"], "lin", CALLBACK).removeprefix("http://testserver")
    assert client.get(back).status_code == 302
    client.logout()
    # The same code again, in a session that holds its state: the provider refuses the exchange.
    session = client.session
    state = urllib.parse.parse_qs(urllib.parse.urlsplit(back).query)["state"][0]
    session["oidc_states"] = {state: {"nonce": "n", "code_verifier": "v" * 64, "added_on": time.time()}}
    session.save()
    answer = client.get(back)
    assert answer.status_code == 400
    assert problem(answer) == "Example ID did not accept the log-in (it expired, or was used)."
    assert get_user_model().objects.filter(username__startswith="lin").count() == 1


def test_the_provider_down_is_a_page(provider, client, db):
    provider.stop()
    answer = client.get("/oidc/authenticate/")
    assert answer.status_code == 503
    assert problem(answer) == "Example ID cannot be reached right now. Try again later."


# Services: the provider's access tokens on the API.


def on_next(token: str, name: str = "default"):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api.post(f"/api/counters/{name}/next")


def test_a_provider_token_takes_next_and_its_account_is_made_on_first_use(provider, db):
    token = provider.service_token()
    r = on_next(token)
    assert r.status_code == 200, r.content
    assert r.json()["value"] == 1
    user = ProviderIdentity.objects.get(subject=harness.SERVICE_ID).user
    assert user.username == harness.SERVICE_ID and not user.has_usable_password()
    assert on_next(token).json()["value"] == 2


def test_the_steady_next_with_a_provider_token_is_one_redis_read_more_and_no_sql(
    provider, db, redis_round_trips, django_assert_num_queries
):
    token = provider.service_token()
    assert on_next(token).status_code == 200
    redis_round_trips.clear()
    with django_assert_num_queries(0):
        assert on_next(token).json()["value"] == 2
    assert redis_round_trips == ["get", "evalsha"]  # the subject's user id, then the counter's script


@pytest.mark.parametrize(
    "why", ["another audience", "tampered", "another key", "alg none", "HS256 with the public key"]
)
def test_a_token_that_does_not_check_out_is_a_401(provider, db, why):
    good = provider.service_token()
    header, payload, signature = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    if why == "another audience":
        token = provider.service_token(audience="https://other.example.com")
    elif why == "tampered":
        forged = {**claims, "sub": "someone-else"}
        token = f"{header}.{jwt.utils.base64url_encode(json.dumps(forged).encode()).decode()}.{signature}"
    elif why == "another key":
        other = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(harness.new_key("first")))
        token = jwt.encode(claims, other, algorithm="RS256", headers={"kid": "first"})
    elif why == "alg none":
        token = jwt.encode(claims, None, algorithm="none", headers={"kid": "first"})
    else:
        public = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(provider.keys[0])).public_key()
        from cryptography.hazmat.primitives import serialization

        pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        token = _hs256(claims, pem)
    r = on_next(token)
    assert (r.status_code, r.json()) == (401, BAD_TOKEN), why
    assert not ProviderIdentity.objects.exists()


def _hs256(claims: dict, secret: bytes) -> str:
    """An HS256 token "signed" with the provider's public key, by hand: PyJWT refuses to."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "first"}).encode())
    body = b64(json.dumps(claims).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


def test_an_expired_provider_token_is_a_401(provider, db):
    token = provider.service_token(client=harness.SHORT_ID, secret=harness.SHORT_SECRET)
    assert on_next(token).status_code == 200
    time.sleep(2 + oidc.LEEWAY_SECONDS + 0.5)  # its 2 s, and the leeway for clocks
    r = on_next(token)
    assert (r.status_code, r.json()) == (401, BAD_TOKEN)


def test_a_rotated_key_is_picked_up_and_the_provider_down_leaves_cached_tokens_working(provider, db):
    old = provider.service_token()
    assert on_next(old).status_code == 200
    provider.restart([harness.new_key("second")])
    new = provider.service_token()
    assert jwt.get_unverified_header(new)["kid"] == "second"
    time.sleep(1.1)  # OIDC_JWKS_REFRESH_SECONDS in these tests
    assert on_next(new).status_code == 200  # an unknown kid: the keys fetched again
    provider.stop()
    assert on_next(new).status_code == 200  # checked once per worker: no provider needed
    oidc._verified.cache_clear()
    assert on_next(new).json()["value"] == 4  # the key is cached too


def test_a_key_the_provider_stopped_listing_is_trusted_no_longer_than_its_set_is_kept(provider, db, monkeypatch):
    monkeypatch.setattr(oidc, "JWKS_SECONDS", 1)
    forget_the_provider()
    old = provider.service_token()
    assert on_next(old).status_code == 200
    provider.restart([harness.new_key("second")])  # the first key is gone from its JWKS
    time.sleep(1.1)  # the set fetched for the first call is a second old: no longer trusted
    oidc._verified.cache_clear()  # a new worker's view: the token not checked yet
    r = on_next(old)
    assert (r.status_code, r.json()) == (401, BAD_TOKEN)


def test_our_own_tokens_and_api_keys_work_beside_the_provider_s(provider, alice, alice_client):
    assert alice_client.post("/api/counters/default/next").json()["value"] == 1
    from accounts.services import api_key_create

    key = api_key_create(user_id=alice.id, name="cron")[1]
    assert on_next(key).json()["value"] == 2
    assert on_next(bearer(alice).split()[1]).json()["value"] == 3


def test_a_deactivated_account_refuses_the_provider_s_tokens_even_new_ones(provider, db):
    first = provider.service_token()
    assert on_next(first).status_code == 200
    user = ProviderIdentity.objects.get(subject=harness.SERVICE_ID).user
    user.is_active = False
    user.save()
    assert on_next(first).status_code == 401  # revoked, or its user found inactive
    time.sleep(1.1)  # a token issued after it (iat is in seconds, the mark in milliseconds)
    r = on_next(provider.service_token())
    assert (r.status_code, r.json()) == (401, BAD_TOKEN)
