"""RenderNow (incrementific/rendering.py) answers JSON as DRF's deferred Response would, byte for
byte and header for header: each request below is made twice from the same state, once as the
views answer and once with RenderNow handing back a plain Response, and the answers compared."""

import json

import pytest
from rest_framework.response import Response

from counters import services
from incrementific.rendering import RenderNow
from tests.helpers import counter_url

JSON_API = "application/vnd.api+json"


def deferred(self, data, status=200):
    return Response(data, status=status)


def answer(client, method, path, body=None, **headers):
    r = getattr(client, method)(path, body, format=None if body is None else "json", **headers)
    return r.status_code, dict(r.headers), r.content


@pytest.mark.parametrize(
    "method, path, body, accept",
    [
        ("get", counter_url("default"), None, None),
        ("get", counter_url("default"), None, "application/json; indent=4"),  # DRF's full negotiation
        ("put", counter_url("default"), {"value": 7}, None),
        ("patch", counter_url("default"), {"value": 7}, "*/*"),
        ("post", counter_url("default", "/next"), None, None),
        ("post", counter_url("default", "/next"), {"step": 3}, "application/json"),
        ("get", "/v1/next", None, None),
        ("get", "/v1/current", None, JSON_API),
        ("put", "/v1/set", {"current": 9}, None),
    ],
)
def test_json_is_the_same_as_a_deferred_response(alice_client, alice, monkeypatch, method, path, body, accept):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    answers = []
    for respond in (RenderNow.respond, deferred):
        monkeypatch.setattr(RenderNow, "respond", respond)
        services.counter_set(owner_id=alice.id, name="default", value=5)
        answers.append(answer(alice_client, method, path, body, **headers))
    now, later = answers
    assert now == later
    assert now[0] == 200
    assert json.loads(now[2])  # a body, not two empty ones


def test_a_new_counter_is_the_same_as_a_deferred_response(alice_client, alice, monkeypatch):
    answers = []
    for respond in (RenderNow.respond, deferred):
        monkeypatch.setattr(RenderNow, "respond", respond)
        status, headers, content = answer(alice_client, "post", "/api/counters", {"name": "builds", "value": 4})
        created = json.loads(content)["created_at"]
        answers.append((status, headers, content.replace(created.encode(), b"<created>")))
        services.counter_delete(owner_id=alice.id, name="builds")
    now, later = answers
    assert now == later
    assert (now[0], now[1]["Location"]) == (201, "http://testserver/api/counters/builds")


def test_the_browsable_api_still_gets_a_response_it_renders_as_a_page(alice_client, alice):
    r = alice_client.get(counter_url("default"), HTTP_ACCEPT="text/html")
    assert isinstance(r, Response)
    assert (r.status_code, r["Content-Type"]) == (200, "text/html; charset=utf-8")
    assert b"&quot;value&quot;: 0" in r.content
