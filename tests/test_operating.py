"""What an operator relies on: liveness and readiness, request ids on every answer and every log
line, and JSON logs (LOG_FORMAT=json), gunicorn's access log included."""

import json
import re
import urllib.error
import urllib.request

import pytest

from tests.helpers import gunicorn, wsgi_environ


def test_livez_answers_without_touching_a_dependency(client, db, private_redis, django_assert_num_queries):
    private_redis.stop()
    with django_assert_num_queries(0):
        for path in ("/livez", "/livez/"):
            r = client.get(path)
            assert (r.status_code, r.content) == (200, b'{"status":"ok"}')


def test_readyz_is_a_503_while_a_dependency_is_down(client, db, private_redis):
    assert client.get("/readyz").json() == {"status": "ok", "database": "ok", "redis": "ok"}
    private_redis.stop()
    r = client.get("/readyz")
    assert (r.status_code, r.json()) == (503, {"status": "unavailable", "database": "ok", "redis": "unavailable"})
    private_redis.start()
    assert client.get("/readyz").status_code == 200


def request_id_of(path: str, **headers: str) -> tuple[int, str]:
    """(status, X-Request-ID) of one request, made as gunicorn makes it: through wsgi.application."""
    from incrementific import wsgi

    answer = {}

    def start_response(status, headers, exc_info=None):
        answer.update(status=int(status.split()[0]), headers=dict(headers))

    response = wsgi.application(wsgi_environ("GET", path, **headers), start_response)
    b"".join(response)
    response.close()
    return answer["status"], answer["headers"]["X-Request-ID"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "path, status, headers",
    [
        ("/api/counters", 401, {}),
        ("/api/counters/default/next", 401, {"HTTP_AUTHORIZATION": "Bearer nope"}),  # the bearer handler
        ("/nowhere", 404, {}),
        ("/livez", 200, {}),
        ("/v1/next", 401, {}),
    ],
)
def test_every_answer_carries_a_request_id(path, status, headers):
    answered, first = request_id_of(path, **headers)
    assert answered == status
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert request_id_of(path, **headers)[1] != first


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "sent, kept",
    [("abc-123", True), ("trace:9f.2_x", True), ("x" * 200, True), ("x" * 201, False), ("a b", False), ("é", False)],
)
def test_a_callers_sane_request_id_is_kept(sent, kept):
    answered = request_id_of("/livez", HTTP_X_REQUEST_ID=sent)[1]
    assert (answered == sent) is kept
    if not kept:
        assert re.fullmatch(r"[0-9a-f]{32}", answered)


def test_json_logs_carry_the_request_id_on_the_apps_lines_and_the_access_line(tmp_path):
    """A real gunicorn with LOG_FORMAT=json and a Redis that does not answer: the store's error
    line and the access line of one request are JSON objects with that request's id."""
    log = tmp_path / "service.log"
    with gunicorn(tmp_path, "redis://127.0.0.1:1/0", LOG_FORMAT="json", LOG_LEVEL="INFO", log=log) as port:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/readyz", headers={"X-Request-ID": "req-42"})
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=10)
        assert (answer.value.code, answer.value.headers["X-Request-ID"]) == (503, "req-42")
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines and len(lines) == len(log.read_text().splitlines())  # every line is one JSON object
    ours = [line for line in lines if line.get("request_id") == "req-42"]
    [error] = [line for line in ours if line["logger"] == "incrementific.redis"]
    assert error["level"] == "ERROR" and error["message"].startswith("counter store unavailable: ConnectionError")
    [access] = [line for line in ours if line["logger"] == "gunicorn.access"]
    assert {key: access[key] for key in ("method", "path", "status")} == {
        "method": "GET",
        "path": "/readyz",
        "status": 503,
    }
    assert 0 < access["duration_seconds"] < 10 and "time" in access
