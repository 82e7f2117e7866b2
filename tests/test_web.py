"""The web app at / through Django's test client: its rules are the API's, its failures the
API's failures, and nothing a page refuses changes anything. (tests/test_browser.py drives
the same pages in Chromium.)"""

import html
import re

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, OperationalError
from django.test import Client, override_settings

from accounts.models import ApiKey
from accounts.services import api_key_create
from counters import services
from counters.models import Counter
from incrementific.redis.keys import counter as counter_key
from tests.conftest import bearer
from tests.helpers import MAX, one_read_per_primary, redis_value

PASSWORD = "a-long-enough-passphrase"


def errors(page, field_id: str) -> list[str]:
    """The messages shown next to one input (the list its aria-describedby points at)."""
    found = re.search(rf'<ul class="errors" id="{re.escape(field_id)}-errors"[^>]*>(.*?)</ul>', page.text, re.S)
    return [html.unescape(item) for item in re.findall(r"<li>(.*?)</li>", found.group(1))] if found else []


def alerts(page) -> list[str]:
    found = re.search(r'<div class="alert" role="alert">(.*?)</div>', page.text, re.S)
    return [html.unescape(item) for item in re.findall(r"<p>(.*?)</p>", found.group(1))] if found else []


def flashed(client) -> list[str]:
    page = client.get("/")
    return [html.unescape(m) for m in re.findall(r'<li class="message [a-z]+">(.*?)</li>', page.text)]


@pytest.fixture
def browser(alice):
    client = Client()
    client.force_login(alice)
    return client


def test_anonymous_visitors_see_the_landing_page_and_are_sent_to_log_in(client, db):
    page = client.get("/")
    assert page.status_code == 200
    assert "Numbers that never repeat." in page.text
    assert page["Content-Security-Policy"].startswith("default-src 'self'; script-src 'self'")
    for path in ["/keys", "/account", "/counters/default/delete"]:
        r = client.get(path)
        assert (r.status_code, r["Location"]) == (302, f"/login?next={path}")
    r = client.post("/counters/default/next")
    assert (r.status_code, r["Location"]) == (302, "/login?next=/counters/default/next")


def test_sign_up_logs_in_with_a_default_counter(client, db):
    r = client.post("/signup", {"username": "carol", "email": "", "password": PASSWORD})
    assert (r.status_code, r["Location"]) == (302, "/")
    carol = get_user_model().objects.get(username="carol")
    assert list(Counter.objects.filter(owner=carol).values_list("name", flat=True)) == ["default"]
    assert redis_value(carol, "default") == 0
    assert flashed(client) == ["Welcome, carol. Your counter “default” is ready at 0."]


def test_sign_up_errors_are_the_apis_next_to_their_fields(client, api_client, alice):
    form = {"username": "new one", "email": "not-an-address", "password": PASSWORD}
    page = client.post("/signup", form)
    api = api_client.post("/api/auth/register", form, format="json").json()["fields"]
    assert page.status_code == 400
    assert errors(page, "f-email") == api["email"] == ["Enter a valid email address."]
    assert errors(page, "f-username") == api["username"]
    assert 'value="new one"' in page.text and 'value="not-an-address"' in page.text  # what was typed stays
    assert PASSWORD not in page.text  # a password is never sent back
    form = {"username": "carol", "password": "carol123"}
    page = client.post("/signup", form)
    api = api_client.post("/api/auth/register", form, format="json").json()["fields"]
    expected = ["The password is too similar to the username.", "This password is too common."]
    assert errors(page, "f-password") == api["password"] == expected
    page = client.post("/signup", {"username": "Alice", "password": PASSWORD})
    assert errors(page, "f-username") == ["A user with that username already exists."]
    assert get_user_model().objects.count() == 1


def test_sign_up_reports_every_invalid_field_at_once(client, alice):
    page = client.post("/signup", {"username": "alice", "email": "nope", "password": "12345678"})
    assert page.status_code == 400
    assert errors(page, "f-username") == ["A user with that username already exists."]
    assert errors(page, "f-email") == ["Enter a valid email address."]
    assert errors(page, "f-password") == ["This password is too common.", "This password is entirely numeric."]
    assert get_user_model().objects.count() == 1


@override_settings(RATE_LIMITS={"register": "2/hour", "login": "", "login_failures": ""})
def test_sign_up_shares_the_apis_limit_per_address(client, api_client, db):
    api_client.post("/api/auth/register", {"username": "u1", "password": PASSWORD}, format="json")
    client.post("/signup", {"username": "u2", "password": PASSWORD})
    r = Client().post("/signup", {"username": "u3", "password": PASSWORD})
    assert r.status_code == 429
    assert int(r["Retry-After"]) > 0
    assert "Request was throttled." in html.unescape(r.text)
    assert not get_user_model().objects.filter(username="u3").exists()


def test_log_in_and_out(client, alice):
    page = client.post("/login", {"username": "alice", "password": "wrong"})
    assert page.status_code == 401
    assert alerts(page) == ["No active account found with the given credentials"]  # the token endpoint's words
    assert client.get("/keys").status_code == 302
    r = client.post("/login", {"username": "alice", "password": PASSWORD, "next": "/keys"})
    assert (r.status_code, r["Location"]) == (302, "/keys")
    assert client.get("/keys").status_code == 200
    # A GET asks (logging out is a POST, CSRF-checked, so no link on another site can do it).
    page = client.get("/logout")
    assert page.status_code == 200
    assert re.search(r'<form method="post" action="/logout" class="actions">', page.text)
    assert '<button type="submit" class="primary">Log out</button>' in page.text
    assert client.get("/keys").status_code == 200  # still logged in
    r = client.post("/logout")
    assert (r.status_code, r["Location"]) == (302, "/login")
    assert client.get("/keys").status_code == 302
    r = client.get("/logout")  # logged out already: to the log-in page
    assert (r.status_code, r["Location"]) == (302, "/login")


def test_log_in_never_redirects_off_site(client, alice):
    r = client.post("/login", {"username": "alice", "password": PASSWORD, "next": "https://evil.example/"})
    assert r["Location"] == "/"


@override_settings(RATE_LIMITS={"register": "", "login": "", "login_failures": "2/hour"})
def test_wrong_passwords_count_against_the_same_limit_as_the_token_endpoint(client, api_client, alice):
    api_client.post("/api/auth/token", {"username": "alice", "password": "wrong"}, format="json")
    client.post("/login", {"username": "alice", "password": "wrong"})
    r = client.post("/login", {"username": "alice", "password": PASSWORD})
    assert r.status_code == 429
    assert client.get("/keys").status_code == 302  # not logged in, even with the right password


def test_the_list_shows_every_value_read_in_one_round_trip(browser, alice, redis_round_trips):
    services.counter_create(owner_id=alice.id, name="invoices", value=41)
    services.counter_next(owner_id=alice.id, name="default")
    redis_round_trips.clear()
    page = browser.get("/")
    assert page.status_code == 200
    assert re.findall(r'<h3 class="counter-name">(.*?)</h3>', page.text) == ["default", "invoices"]
    assert re.findall(r"<span data-value>(\d+)</span>", page.text) == ["1", "41"]
    assert redis_round_trips == one_read_per_primary(counter_key(alice.id, "default"))
    assert "http://testserver/api/counters/default/next" in page.text  # the curl panel's real URL


def test_the_list_is_paged(browser, alice):
    for n in range(55):
        services.counter_create(owner_id=alice.id, name=f"c{n:02}")
    first, second = browser.get("/"), browser.get("/?page=2")
    assert len(re.findall(r'<li class="counter', first.text)) == 50
    assert len(re.findall(r'<li class="counter', second.text)) == 6  # 55 + default
    assert "Page 2 of 2" in second.text


def test_create_next_set_delete(browser, alice):
    r = browser.post("/counters", {"name": "invoices", "value": ""})
    assert (r.status_code, r["Location"]) == (302, "/#c-invoices")
    assert redis_value(alice, "invoices") == 0
    for expected in (1, 2, 3):
        r = browser.post("/counters/invoices/next", {"page": "1"})
        assert (r.status_code, r["Location"]) == (302, "/#c-invoices")
        assert redis_value(alice, "invoices") == expected
    r = browser.post("/counters/invoices/set", {"value": "100", "page": "2"})
    assert (r.status_code, r["Location"]) == (302, "/?page=2#c-invoices")  # back where the form was
    assert redis_value(alice, "invoices") == 100
    assert flashed(browser) == [
        "Created “invoices” at 0.",
        "invoices: 1",
        "invoices: 2",
        "invoices: 3",
        "Set “invoices” to 100. Its next value is 101.",
    ]
    confirm = browser.get("/counters/invoices/delete")
    assert confirm.status_code == 200
    assert "Its value is <strong>100</strong>." in confirm.text
    assert Counter.objects.filter(owner=alice, name="invoices").exists()  # asking is not deleting
    r = browser.post("/counters/invoices/delete")
    assert (r.status_code, r["Location"]) == (302, "/")
    assert not Counter.objects.filter(owner=alice, name="invoices").exists()
    assert redis_value(alice, "invoices") is None


@pytest.mark.parametrize("value", ["1.0", "-1", " 5", "+5", "1e3", "٣", "abc", str(MAX + 1), ""])
def test_a_set_refused_here_is_refused_by_the_api_with_the_same_words(browser, alice_client, alice, value):
    services.counter_set(owner_id=alice.id, name="default", value=7)
    page = browser.post("/counters/default/set", {"value": value})
    api = alice_client.put("/api/counters/default", {"value": value}, format="multipart")
    assert (page.status_code, api.status_code) == (400, 400)
    assert errors(page, "set-default") == api.json()["fields"]["value"]
    assert f'value="{html.escape(value)}"' in page.text or value == ""
    assert redis_value(alice, "default") == 7


@pytest.mark.parametrize(
    ("form", "field", "status"),
    [
        ({"name": "has space"}, "f-name", 400),
        ({"name": "x" * 65}, "f-name", 400),
        ({"name": "ok", "value": "1.5"}, "f-start", 400),
        ({"name": "ok", "value": str(MAX + 1)}, "f-start", 400),
        ({"name": "default"}, "f-name", 409),
    ],
)
def test_a_create_refused_here_is_refused_by_the_api_with_the_same_words(
    browser, alice_client, alice, form, field, status
):
    page = browser.post("/counters", form)
    api = alice_client.post("/api/counters", form, format="multipart").json()
    assert page.status_code == status
    expected = api["fields"][next(iter(api["fields"]))] if "fields" in api else [api["detail"]]
    assert errors(page, field) == expected
    assert list(Counter.objects.filter(owner=alice).values_list("name", flat=True)) == ["default"]


@override_settings(MAX_COUNTERS_PER_USER=1)
def test_the_counter_cap_is_said_above_the_form(browser, alice):
    page = browser.post("/counters", {"name": "more"})
    assert page.status_code == 403
    assert alerts(page) == ["You have 1 counters, the most one account may have."]


def test_next_past_the_largest_value_changes_nothing(browser, alice):
    services.counter_set(owner_id=alice.id, name="default", value=MAX)
    page = browser.post("/counters/default/next")
    assert page.status_code == 409
    assert errors(page, "set-default") == ["The value would pass 9223372036854775807; nothing changed."]
    assert redis_value(alice, "default") == MAX


def test_another_users_counter_is_not_found_and_unchanged(browser, bob):
    services.counter_create(owner_id=bob.id, name="secret", value=5)
    for method, path in [
        ("post", "/counters/secret/next"),
        ("post", "/counters/secret/set"),
        ("get", "/counters/secret/delete"),
        ("post", "/counters/secret/delete"),
    ]:
        r = getattr(browser, method)(path, {"value": "1"} if method == "post" else None)
        assert r.status_code == 404, path
        assert "No such counter" in r.text
    assert redis_value(bob, "secret") == 5
    assert Counter.objects.filter(owner=bob, name="secret").exists()


def test_a_form_without_its_csrf_token_changes_nothing(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post("/counters/default/next").status_code == 403
    assert client.post("/counters/default/delete").status_code == 403
    assert redis_value(alice, "default") == 0
    assert Counter.objects.filter(owner=alice).count() == 1


def test_redis_down_is_a_503_page_with_the_apis_words_and_nothing_changes(browser, alice, private_redis):
    services.counter_create(owner_id=alice.id, name="invoices", value=4)
    private_redis.stop()
    listing = browser.get("/")  # the names, from SQL, and why their values are missing
    assert re.findall(r'<h3 class="counter-name">(.*?)</h3>', listing.text) == ["default", "invoices"]
    assert listing.text.count('<span class="unavailable">unavailable</span>') == 2
    for method, path in [("get", "/"), ("post", "/counters/invoices/next"), ("post", "/counters")]:
        r = getattr(browser, method)(path, {"name": "new"} if path == "/counters" else None)
        assert r.status_code == 503, path
        assert "Counter storage is unavailable, try again." in r.text
        assert "counter_store_unavailable" in r.text
    assert list(Counter.objects.filter(owner=alice).order_by("name").values_list("name", flat=True)) == [
        "default",
        "invoices",
    ]


def test_an_api_key_is_shown_once_and_works(browser, alice, api_client):
    page = browser.post("/keys", {"name": "billing"})
    assert page.status_code == 201
    assert page["Cache-Control"] == "no-store"
    secret = re.search(r'id="new-key-value" class="secret" type="text" value="(inc_[^"]+)"', page.text).group(1)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api_client.post("/api/counters/default/next").json()["value"] == 1
    listing = browser.get("/keys")
    assert secret not in listing.text
    assert f"<code>{ApiKey.objects.get().prefix}…</code>" in listing.text
    assert secret.startswith(ApiKey.objects.get().prefix)
    assert errors(browser.post("/keys", {"name": ""}), "f-name") == ["This field may not be blank."]
    assert ApiKey.objects.count() == 1


def test_revoking_a_key_asks_first_and_only_touches_your_own(browser, alice, bob):
    mine, _ = api_key_create(user_id=alice.id, name="ci")
    theirs, _ = api_key_create(user_id=bob.id, name="theirs")
    assert browser.get(f"/keys/{theirs.pk}/revoke").status_code == 404
    assert browser.post(f"/keys/{theirs.pk}/revoke").status_code == 404
    assert browser.get(f"/keys/{mine.pk}/revoke").status_code == 200
    assert ApiKey.objects.count() == 2
    r = browser.post(f"/keys/{mine.pk}/revoke")
    assert (r.status_code, r["Location"]) == (302, "/keys")
    assert list(ApiKey.objects.values_list("name", flat=True)) == ["theirs"]


def test_changing_the_password_keeps_this_browser_and_refuses_old_tokens(browser, alice, api_client):
    old_token = bearer(alice)
    page = browser.post("/account", {"old_password": "wrong", "new_password": "another-long-passphrase"})
    assert page.status_code == 400
    assert errors(page, "f-old_password") == ["That is not your password."]
    r = browser.post("/account", {"old_password": PASSWORD, "new_password": "another-long-passphrase"})
    assert (r.status_code, r["Location"]) == (302, "/account")
    assert browser.get("/keys").status_code == 200  # still logged in here
    api_client.credentials(HTTP_AUTHORIZATION=old_token)
    assert api_client.get("/api/counters/default").json()["code"] == "token_revoked"
    other = Client()
    assert other.post("/login", {"username": "alice", "password": PASSWORD}).status_code == 401
    assert other.post("/login", {"username": "alice", "password": "another-long-passphrase"}).status_code == 302


def test_a_stale_form_gets_a_page_that_says_so_and_the_api_still_gets_json(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    r = client.post("/counters/default/next")
    assert r.status_code == 403
    assert r["Content-Type"] == "text/html; charset=utf-8"
    assert "This form has expired" in r.text
    r = client.post("/api/counters/default/next")
    assert r.json()["code"] == "permission_denied"  # DRF's session check, as before
    for login in ["/admin/login/", "/api-auth/login/"]:
        r = client.post(login)
        assert (r.status_code, r["Content-Type"]) == (403, "text/html; charset=utf-8")  # Django's own page
        assert "CSRF verification failed" in r.text
    r = client.post("/api/auth/token", {"username": "alice"})
    assert r.status_code != 403  # the API is not CSRF-checked: no session cookie is involved
    assert redis_value(alice, "default") == 0


def test_a_database_outage_is_a_503_page_with_the_apis_words(browser, monkeypatch):
    def down(**kwargs):
        raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr("counters.web.counter_list", down)
    r = browser.get("/")
    assert r.status_code == 503
    assert "The database is unavailable, try again." in r.text
    assert "database_unavailable" in r.text


def test_a_bug_in_a_page_stays_a_500_not_an_outage(browser, monkeypatch):
    def broken(**kwargs):
        raise IntegrityError("a broken constraint is a bug")

    monkeypatch.setattr("counters.web.counter_list", broken)
    with pytest.raises(IntegrityError):  # the test client re-raises what Django would log as a 500
        browser.get("/")


def test_a_key_made_in_the_web_app_is_scoped_as_the_api_would_scope_it(browser, alice, alice_client):
    services.counter_create(owner_id=alice.id, name="builds")
    page = browser.get("/keys")
    assert '<input type="checkbox" name="counters" value="builds">' in page.text
    assert page.text.count('name="actions"') == 5 and page.text.count(" checked>") == 6  # all actions, all counters
    r = browser.post(
        "/keys",
        {"name": "build server", "scope": "some", "counters": ["builds"], "actions": ["next"],
         "expires_at": "2030-01-01T00:00"},
    )  # fmt: skip
    assert r.status_code == 201
    row = ApiKey.objects.get()
    assert (row.counters, row.actions, row.expires_at.isoformat()) == (
        ["builds"],
        ["next"],
        "2030-01-01T00:00:00+00:00",
    )
    assert "next on <code>builds</code>" in r.text
    key = re.search(r'id="new-key-value" class="secret" type="text" value="([^"]+)"', r.text).group(1)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.post("/api/counters/builds/next").json()["value"] == 1
    assert client.post("/api/counters/default/next").status_code == 403


@pytest.mark.parametrize(
    "form, api, field",
    [
        ({"scope": "some"}, {"counters": []}, "counters"),
        ({"actions": []}, {"actions": []}, "actions"),
        ({"expires_at": "2001-01-01T00:00"}, {"expires_at": "2001-01-01T00:00"}, "expires_at"),
        ({"expires_at": "soon"}, {"expires_at": "soon"}, "expires_at"),
    ],
)
def test_the_key_form_refuses_what_the_api_refuses_with_the_same_words(browser, alice_client, form, api, field):
    sent = {"name": "x", "scope": "all", "actions": ["read", "next", "set", "create", "delete"], **form}
    page = browser.post("/keys", sent)
    expected = alice_client.post("/api/keys", {"name": "x", **api}, format="json").json()["fields"][field]
    assert page.status_code == 400
    assert errors(page, f"f-{field}") == expected
    assert not ApiKey.objects.exists()


def form_keys(page) -> list[str]:
    return re.findall(r'<input type="hidden" name="idempotency_key" value="([^"]+)">', page.text)


def test_every_form_that_changes_a_counter_carries_a_fresh_key(browser, alice):
    first, second = form_keys(browser.get("/")), form_keys(browser.get("/"))
    assert len(first) == 3  # create, and next and set of "default" (delete asks on a page of its own)
    assert len(set(first)) == len(first) and not set(first) & set(second)
    assert len(form_keys(browser.get("/counters/default/delete"))) == 1


def test_a_form_sent_twice_makes_its_change_once(browser, alice):
    [create, next_key, set_key] = form_keys(browser.get("/"))[:3]
    for _ in range(2):
        r = browser.post("/counters/default/next", {"idempotency_key": next_key})
        assert (r.status_code, r["Location"]) == (302, "/#c-default")
    assert flashed(browser) == ["default: 1", "default: 1"]
    assert redis_value(alice, "default") == 1
    for _ in range(2):
        assert browser.post("/counters", {"name": "tickets", "idempotency_key": create}).status_code == 302
    assert flashed(browser) == ["Created “tickets” at 0.", "Created “tickets” at 0."]  # not "already exists"
    browser.post("/counters/default/set", {"value": "7", "idempotency_key": set_key})
    browser.post("/counters/default/next")
    browser.post("/counters/default/set", {"value": "7", "idempotency_key": set_key})
    assert redis_value(alice, "default") == 8  # the second set was the first one's answer
    [delete] = form_keys(browser.get("/counters/tickets/delete"))
    assert browser.post("/counters/tickets/delete", {"idempotency_key": delete}).status_code == 302
    services.counter_create(owner_id=alice.id, name="tickets", value=3)
    assert browser.post("/counters/tickets/delete", {"idempotency_key": delete}).status_code == 302
    assert redis_value(alice, "tickets") == 3


def test_a_series_is_created_here_and_listed_with_its_print_and_period(browser, alice):
    form = {
        "name": "sales",
        "value": "",
        "reset": "yearly",
        "timezone": "Europe/Paris",
        "format": "INV-{year}-{value:05}",
    }
    r = browser.post("/counters", form)
    assert (r.status_code, r["Location"]) == (302, "/#c-sales")
    row = Counter.objects.get(owner=alice, name="sales")
    assert (row.reset, row.timezone, row.format) == ("yearly", "Europe/Paris", "INV-{year}-{value:05}")
    browser.post("/counters/sales/next", {"page": "1"})
    year = services.counter_get(owner_id=alice.id, name="sales").period
    assert flashed(browser) == [f"Created “sales” at INV-{year}-00000.", f"sales: INV-{year}-00001"]
    page = browser.get("/")
    assert f"<span data-value>INV-{year}-00001</span>" in page.text
    assert f"yearly, now in {year} (Europe/Paris)" in page.text
    # the form's defaults: no reset, UTC, no format; its example is filled in by site.js
    assert 'id="f-timezone" name="timezone" type="text" value="UTC"' in page.text
    assert "data-format-example" in page.text


@pytest.mark.parametrize(
    "field, value, code_message",
    [
        ("format", "INV-{nope}", "Unknown token {nope}"),
        ("timezone", "Mars/Base", "Unknown time zone 'Mars/Base'"),
        ("reset", "weekly", "Must be null, yearly, monthly or daily."),
    ],
)
def test_a_series_refused_here_is_refused_with_the_apis_words(browser, alice_client, alice, field, value, code_message):
    page = browser.post("/counters", {"name": "bad", field: value})
    assert page.status_code == 400
    [shown] = errors(page, f"f-{field}")
    api = alice_client.post("/api/counters", {"name": "bad", field: value}, format="json").json()
    assert shown == api["fields"][field][0] and shown.startswith(code_message)
    assert not Counter.objects.filter(owner=alice, name="bad").exists()
