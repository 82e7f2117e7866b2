import re
from datetime import date

from django.test import Client

from counters import services
from counters.series import Series
from tests.helpers import redis_value

PASSWORD = "a-long-enough-passphrase"


def logged_in(alice) -> Client:
    """Logs in through the browsable API's own login form, with CSRF checks on."""
    client = Client(enforce_csrf_checks=True)
    page = client.get("/api-auth/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    r = client.post("/api-auth/login/", {"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": token})
    assert r.status_code == 302
    return client


def test_a_person_logs_in_browses_and_takes_the_next_value(alice):
    client = logged_in(alice)
    page = client.get("/api/counters/default/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert "<h1>Counter</h1>" in page.text
    assert 'name="value"' in page.text  # the set form
    next_page = client.get("/api/counters/default/next", HTTP_ACCEPT="text/html")
    assert 'name="step"' in next_page.text  # the next form with its button
    token = client.cookies["csrftoken"].value
    r = client.post("/api/counters/default/next", {"step": ""}, HTTP_ACCEPT="text/html", HTTP_X_CSRFTOKEN=token)
    assert r.status_code == 200
    assert redis_value(alice, "default") == 1


def test_the_forms_take_a_documents_date_and_a_dated_next_lands_in_its_period(alice):
    services.counter_create(owner_id=alice.id, name="sales", series=Series.of("yearly", "UTC", "S-{value}"))
    client = logged_in(alice)
    for path in ["/api/counters/sales/", "/api/counters/sales/next"]:
        assert 'name="date"' in client.get(path, HTTP_ACCEPT="text/html").text, path
    token = client.cookies["csrftoken"].value
    r = client.post("/api/counters/sales/next", {"date": "2026-05-05"}, HTTP_ACCEPT="text/html", HTTP_X_CSRFTOKEN=token)
    assert r.status_code == 200 and "S-1" in r.text
    assert services.counter_get(owner_id=alice.id, name="sales", day=date(2026, 1, 1)).value == 1


def test_a_session_post_without_csrf_is_refused(alice):
    client = logged_in(alice)
    r = client.post("/api/counters/default/next")
    assert r.status_code == 403
    assert r.json() == {"detail": "CSRF Failed: CSRF token missing.", "code": "permission_denied"}
    assert redis_value(alice, "default") == 0


def test_the_api_root_lists_the_counters_endpoint(alice):
    r = logged_in(alice).get("/api/", HTTP_ACCEPT="application/json")
    assert r.json() == {"counters": "http://testserver/api/counters", "keys": "http://testserver/api/keys"}


def page_of(client, path: str) -> tuple[str, str, str]:
    """The page's title (h1), breadcrumbs and description, as the browsable API shows them."""
    text = client.get(path, HTTP_ACCEPT="text/html").text
    title = re.search(r'<div class="page-header">\s*<h1>(.*?)</h1>', text, re.S).group(1)
    crumbs = re.search(r'<ul class="breadcrumb">(.*?)</ul>', text, re.S).group(1)
    description = re.search(r'<div class="pull-left">\s*(.*?)\s*</div>', text, re.S).group(1)
    return title, " > ".join(re.findall(r">([^<>]+)</(?:a|li)>", crumbs)), description


def test_the_browsable_api_reads_as_part_of_the_product(alice):
    client = logged_in(alice)
    title, crumbs, description = page_of(client, "/api/")
    assert (title, crumbs) == ("API Root", "API Root")
    assert description.startswith("<p><strong>incrementific</strong>: integers as a service.")
    assert '<a href="/api/docs">API documentation</a>' in description  # Markdown, rendered

    title, crumbs, listed = page_of(client, "/api/counters")
    assert (title, crumbs) == ("Counters", "API Root > Counters")
    assert "<p>POST a <code>name</code> (and an optional starting <code>value</code>, default 0)" in listed
    assert "`" not in listed

    title, crumbs, detail = page_of(client, "/api/counters/default")
    assert (title, crumbs) == ("Counter", "API Root > Counters > Counter")
    assert detail.startswith("<p>One of your counters. PUT or PATCH a <code>value</code> to set it;")
    assert "50 a page" not in detail  # not the list's description again

    title, crumbs, _ = page_of(client, "/api/counters/default/next")
    assert (title, crumbs) == ("Next value", "API Root > Counters > Counter > Next value")
    title, crumbs, keys = page_of(client, "/api/keys")
    assert (title, crumbs) == ("API keys", "API Root > API keys")
    assert "<code>Authorization:\nBearer inc_...</code>" in keys


def test_the_browsable_apis_pages_say_what_delete_means(alice):
    client = logged_in(alice)
    means = (
        "<p>Deleting a counter deletes its numbers with it: a counter created again under the same name starts "
        "again from its starting value (1, 2, 3 ... then 1, 2 again)."
    )
    assert means in page_of(client, "/api/counters")[2]
    assert means in page_of(client, "/api/counters/default")[2]


def test_the_browsable_apis_log_in_page_carries_the_products_name(db):
    text = Client().get("/api-auth/login/").text
    assert "<title>Log in · incrementific API</title>" in text
    assert '<h3 style="margin: 0 0 20px;">incrementific API</h3>' in text
    assert "Django REST framework" not in text
