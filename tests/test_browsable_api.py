import re

from django.test import Client

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
    assert "Counter Instance" in page.text or "default" in page.text
    assert 'name="value"' in page.text  # the set form
    next_page = client.get("/api/counters/default/next", HTTP_ACCEPT="text/html")
    assert 'name="step"' in next_page.text  # the next form with its button
    token = client.cookies["csrftoken"].value
    r = client.post("/api/counters/default/next", {"step": ""}, HTTP_ACCEPT="text/html", HTTP_X_CSRFTOKEN=token)
    assert r.status_code == 200
    assert redis_value(alice, "default") == 1


def test_a_session_post_without_csrf_is_refused(alice):
    client = logged_in(alice)
    r = client.post("/api/counters/default/next")
    assert r.status_code == 403
    assert r.json() == {"detail": "CSRF Failed: CSRF token missing.", "code": "permission_denied"}
    assert redis_value(alice, "default") == 0


def test_the_api_root_lists_the_counters_endpoint(alice):
    r = logged_in(alice).get("/api/", HTTP_ACCEPT="application/json")
    assert r.json() == {"counters": "http://testserver/api/counters", "keys": "http://testserver/api/keys"}
