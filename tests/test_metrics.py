"""GET /metrics (incrementific/metrics.py): Prometheus's text format, summed over gunicorn's workers."""

import io
import json
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from incrementific import metrics, wsgi
from tests.conftest import bearer
from tests.helpers import counter_url, gunicorn, wsgi_environ


def through_wsgi(method: str, path: str, token: str, body: dict | None = None, **headers) -> int:
    """A request through incrementific.wsgi.application, the entry point gunicorn calls (the test
    client's handler is Django's, which knows nothing of routes and surfaces)."""
    environ = wsgi_environ(method, path, HTTP_AUTHORIZATION=token, **headers)
    if body is not None:
        data = json.dumps(body).encode()
        environ.update(CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(data)))
        environ["wsgi.input"] = io.BytesIO(data)
    answer = {}
    response = wsgi.application(environ, lambda status, headers, exc_info=None: answer.update(status=status))
    b"".join(response)
    response.close()
    return int(answer["status"][:3])


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value}, as prometheus_client's own parser reads the text."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(autouse=True)
def _handed_out_from_zero():
    """Prometheus counters are floats, exact to 2**53: another test's `next` by 2**63-1 would
    leave no room for +7 to show. (prometheus_client has no reset; this is its value.)"""
    metrics.flush()
    metrics.HANDED_OUT._value.set(0)


def scrape(client, **extra) -> dict:
    r = client.get("/metrics", **extra)
    assert r.status_code == 200, r.content
    assert r["Content-Type"].startswith("text/plain; version=")
    return samples(r.content.decode())


@pytest.mark.django_db(transaction=True)  # a real request closes its connection at the end
def test_next_set_create_and_delete_are_counted_by_kind_surface_and_route(client, alice):
    token = bearer(alice)
    before = scrape(client)
    assert through_wsgi("POST", "/api/counters", token, {"name": "secret-name"}) == 201
    for _ in range(3):
        assert through_wsgi("POST", counter_url("secret-name", "/next"), token, {"step": 2}) == 200
    assert through_wsgi("PUT", counter_url("secret-name"), token, {"value": 50}) == 200
    assert through_wsgi("DELETE", counter_url("secret-name"), token) == 204
    assert through_wsgi("GET", "/v1/next", token) == 200
    after = scrape(client)

    def rose(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert rose("incrementific_values_handed_out_total") == 7  # three steps of two, and one
    assert rose("incrementific_counter_operations_total", kind="next", surface="v1") == 1
    assert rose("incrementific_counter_operations_total", kind="next", surface="api") == 3
    assert rose("incrementific_counter_operations_total", kind="set", surface="api") == 1
    assert rose("incrementific_counter_operations_total", kind="create", surface="api") == 1
    assert rose("incrementific_counter_operations_total", kind="delete", surface="api") == 1
    route = "counter-next"
    assert rose("incrementific_http_requests_total", route=route, method="POST", status="200") == 3
    assert rose("incrementific_http_request_duration_seconds_count", route=route) == 3
    assert rose("incrementific_http_request_duration_seconds_bucket", route=route, le="+Inf") == 3
    assert not any("secret-name" in str(key) for key in after)  # no label from user input


def test_reservations_restores_replays_and_throttling_are_counted(client, alice_client, redis_conn, settings):
    settings.COUNTER_BLOCK_SIZE = 2
    assert alice_client.post("/api/counters", {"name": "c"}).status_code == 201
    before = scrape(client)
    for _ in range(3):  # 1, 2 within the block; 3 reserves
        alice_client.post(counter_url("c", "/next"))
    redis_conn.flushdb()
    alice_client.get(counter_url("c"))  # restored from SQL
    for _ in range(2):
        alice_client.post(counter_url("c", "/next"), HTTP_IDEMPOTENCY_KEY="once")
    settings.COUNTER_RATE_LIMIT = "1/minute"
    statuses = [alice_client.get(counter_url("c")).status_code for _ in range(2)]
    assert statuses == [200, 429]
    after = scrape(client)
    assert value(after, "incrementific_reservations_total") - value(before, "incrementific_reservations_total") >= 1
    restores = "incrementific_restores_total"
    assert value(after, restores, reason="forgotten") - value(before, restores, reason="forgotten") == 1
    replays = "incrementific_idempotent_replays_total"
    assert value(after, replays) - value(before, replays) == 1
    throttled = "incrementific_throttled_requests_total"
    assert value(after, throttled, limit="counter_rate") - value(before, throttled, limit="counter_rate") == 1


def test_redis_errors_are_counted_by_kind(client, alice_client, private_redis):
    before = scrape(client)
    private_redis.stop()
    assert alice_client.post(counter_url("default", "/next")).status_code == 503
    after = scrape(client)
    errors = "incrementific_dependency_errors_total"
    kind = {"dependency": "redis", "kind": "ConnectionError"}
    assert value(after, errors, **kind) - value(before, errors, **kind) == 1


@pytest.mark.parametrize(
    "extra",
    [
        {"REMOTE_ADDR": "10.0.0.7"},
        {"HTTP_X_FORWARDED_FOR": "203.0.113.9"},  # a proxy on this machine: the caller is not local
        {"REMOTE_ADDR": "10.0.0.7", "HTTP_AUTHORIZATION": "Bearer wrong"},
    ],
)
def test_anyone_else_gets_the_404_of_a_path_that_does_not_exist(client, settings, extra):
    settings.METRICS_TOKEN = "scraper-token"
    r = client.get("/metrics", **extra)
    assert r.status_code == 404
    assert r.json() == {"detail": "Not found.", "code": "not_found"}
    assert r.json() == client.get("/no-such-path", HTTP_ACCEPT="application/json").json()


def test_a_scraper_elsewhere_gets_in_with_the_token(client, settings):
    settings.METRICS_TOKEN = "scraper-token"
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.7", HTTP_AUTHORIZATION="Bearer scraper-token").status_code == 200
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.7", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_values_handed_out_are_summed_over_every_gunicorn_worker(tmp_path, private_redis):
    """Three workers, each with its own numbers: a scrape, three `next`, and the sum rose by
    exactly three, whichever workers served them and whichever answers the scrape."""
    with gunicorn(tmp_path, private_redis.url, "--workers", "3", log=tmp_path / "gunicorn.log") as port:
        base = f"http://127.0.0.1:{port}"

        def call(method, path, body=None, token=None):
            headers = {"Content-Type": "application/json"}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            data = json.dumps(body).encode() if body is not None else None
            with urllib.request.urlopen(urllib.request.Request(base + path, data, headers, method=method)) as r:
                return r.read().decode()

        def handed_out() -> float:
            return value(samples(call("GET", "/metrics")), "incrementific_values_handed_out_total")

        token = json.loads(call("POST", "/api/auth/register", {"username": "m", "password": "a-long-passphrase!"}))
        before = handed_out()
        for _ in range(3):
            call("POST", "/api/counters/default/next", token=token["access"])
        deadline = time.monotonic() + 10  # each worker moves its counts into the shared files once a second
        while handed_out() < before + 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)  # and nothing more arrives later
        assert handed_out() == before + 3
        assert (tmp_path / "prometheus").is_dir() and any((tmp_path / "prometheus").iterdir())


def test_a_batch_of_durations_lands_where_observing_each_would_put_it():
    # metrics._observe_many writes prometheus_client's private per-bucket counters (_buckets,
    # _sum) to flush a batch at once; this pins that they mean what Histogram.observe() does.
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    samples = [0.0004, 0.001, 0.003, 0.003, 0.07, 0.9, 4.0, 12.0]
    registry = CollectorRegistry()
    one_by_one = Histogram("one_by_one", "", ["route"], buckets=metrics.BUCKETS, registry=registry)
    batched = Histogram("batched", "", ["route"], buckets=metrics.BUCKETS, registry=registry)
    for seconds in samples:
        one_by_one.labels("r").observe(seconds)
    slots = [0] * (len(metrics.BUCKETS) + 3)
    for seconds in samples:  # as metrics.request_finished() keeps them
        slots[metrics.bisect_left(metrics.BUCKETS, seconds)] += 1
        slots[-2] += 1
        slots[-1] += seconds
    metrics._observe_many(batched.labels("r"), slots)
    text = generate_latest(registry).decode()
    kept = [line for line in text.splitlines() if "_created" not in line]  # when each was made
    lines = sorted(line.replace("one_by_one", "h") for line in kept if line.startswith("one_by_one"))
    assert lines == sorted(line.replace("batched", "h") for line in kept if line.startswith("batched"))
    assert 'h_bucket{le="0.005",route="r"} 4.0' in lines and 'h_count{route="r"} 8.0' in lines
