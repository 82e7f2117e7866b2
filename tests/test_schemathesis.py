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
import urllib.request

from tests.helpers import BASE_DIR, gunicorn

EXAMPLES = os.environ.get("FUZZ_EXAMPLES", "6")


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
                "--max-examples", EXAMPLES, "--seed", "20261206", "--no-color",
                "--header", f"Authorization: Bearer {key}",
            ],
            cwd=BASE_DIR, capture_output=True, text=True, timeout=540,
        )  # fmt: skip
    failures = run.stdout.split("= SUMMARY =")[0][-6000:]
    summary = run.stdout[-3000:]
    assert run.returncode == 0, failures + summary
    assert "No issues found" in run.stdout or " passed" in summary, summary
