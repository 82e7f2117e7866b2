"""The plain DRF views `make bench` measures the app against are what BENCHMARKS.md says they are."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_redis import get_redis_connection

from tests.conftest import bearer

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.harness.bench_reference")]


def counted() -> int:
    return int(get_redis_connection("counters").get("bench:reference") or 0)


def test_the_plain_view_counts_for_anyone(client):
    before = counted()
    response = client.post("/plain")
    assert response.status_code == 200
    assert response.json() == {"value": before + 1}
    # No authentication at all: a credential is not even looked at.
    response = client.post("/plain", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert response.status_code == 200
    assert response.json() == {"value": before + 2}
    assert counted() == before + 2


def test_the_simplejwt_view_loads_the_user_with_one_query(client, alice):
    assert client.post("/jwt").status_code == 401
    token, before = bearer(alice), counted()
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/jwt", HTTP_AUTHORIZATION=token)
    assert response.status_code == 200
    assert response.json() == {"value": before + 1}
    assert len(queries) == 1 and queries[0]["sql"].startswith('SELECT "auth_user"')
