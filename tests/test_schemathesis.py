"""The schema is the contract: schemathesis, with every check (`--checks all`: data the schema
allows is accepted, data it forbids refused, statuses and headers as documented), against the
service under gunicorn as `make run` serves it, with an API key. A short, seeded run here, so
that an endpoint added later cannot drift from its schema unnoticed; `make fuzz` runs many more
examples. schemathesis.toml names the two answers that are the contract (a reused
Idempotency-Key's 422, a body past its size limit's 413)."""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

from tests.helpers import BASE_DIR, gunicorn

EXAMPLES = os.environ.get("FUZZ_EXAMPLES", "6")
SEED = os.environ.get("FUZZ_SEED", "20261206")  # another seed fuzzes other data (make fuzz FUZZ_SEED=...)


def call(port: int, path: str, body: dict, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(), headers)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def test_every_operation_keeps_to_its_schema_under_every_check(tmp_path, private_redis):
    with gunicorn(tmp_path, private_redis.url, "--workers", "2", log=tmp_path / "gunicorn.log") as port:
        access = call(port, "/api/auth/register", {"username": "fuzz", "password": "a-long-enough-passphrase"})
        key = call(port, "/api/keys", {"name": "fuzz"}, access["access"])["key"]
        run = subprocess.run(
            [
                sys.executable, "-m", "schemathesis.cli", "run", f"http://127.0.0.1:{port}/api/schema",
                "--checks", "all", "--phases", "examples,coverage,fuzzing",
                "--max-examples", EXAMPLES, "--seed", SEED, "--no-color",
                "--header", f"Authorization: Bearer {key}",
            ],
            cwd=BASE_DIR, capture_output=True, text=True, timeout=540,
        )  # fmt: skip
    failures = run.stdout.split("= SUMMARY =")[0][-6000:]
    summary = run.stdout[-3000:]
    assert run.returncode == 0, failures + summary
    assert "No issues found" in run.stdout or " passed" in summary, summary


def test_a_long_request_line_reaches_the_app_and_a_longer_one_is_the_documented_414(tmp_path, private_redis):
    """Found by schemathesis: `?page=` repeated past gunicorn's default 4094 bytes was its 414,
    which no operation documented."""
    with gunicorn(tmp_path, private_redis.url, log=tmp_path / "gunicorn.log") as port:
        access = call(port, "/api/auth/register", {"username": "long", "password": "a-long-enough-passphrase"})
        schema = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/schema?format=json", timeout=10))
        assert schema["paths"]["/api/counters"]["get"]["responses"]["414"] == {
            "$ref": "#/components/responses/RequestLineTooLong"
        }
        documented = schema["components"]["responses"]["RequestLineTooLong"]
        assert documented["content"] == {"text/html": {"schema": {"type": "string"}}}

        def get(query: str) -> tuple[int, str, bytes]:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/counters?{query}", headers={"Authorization": f"Bearer {access['access']}"}
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    return answer.status, answer.headers["Content-Type"], answer.read()
            except urllib.error.HTTPError as answer:
                return answer.code, answer.headers["Content-Type"], answer.read()

        line = len("GET /api/counters? HTTP/1.1")
        status, kind, body = get("x=" + "a" * (8190 - line - 2))  # the longest line gunicorn takes
        assert (status, kind, json.loads(body)["count"]) == (200, "application/json", 1)
        status, kind, body = get("page=1&" * 800)
        assert (status, kind, json.loads(body)["fields"]) == (
            400,
            "application/json",
            {"page": ["Give one page number."]},
        )
        status, kind, _ = get("x=" + "a" * (8190 - line - 1))
        assert (status, kind) == (414, "text/html")
