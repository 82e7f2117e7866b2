"""`make bench-gapless`: one gapless counter against a fast one, side by side, on PostgreSQL.

The service runs as `make bench` runs it (gunicorn with gunicorn.conf.py, DEBUG off, a private
Redis with appendfsync always), on a database of its own in the machine's PostgreSQL (or
DATABASE_URL's server). wrk loads `next` with 24 connections, a JWT, on a fast counter and on a
gapless one in turn, round after round, so that each round's ratio compares two runs seconds
apart on the same machine. Every gapless answer is kept: the numbers must be exactly 1..N, and
the log must hold N entries. The table goes to BENCHMARKS.md.

    python -m tests.harness.bench_gapless [--rounds 6] [--seconds 5]
"""

import argparse
import os
import re
import statistics
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from tests.harness.bench import BASE_DIR, Stack, wrk

CONNECTIONS = 24
DATABASE = "incrementific_bench_gapless"
MARKER = "<!-- bench_gapless -->"


def _server_url() -> str:
    url = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    if not url.startswith("postgres"):
        raise SystemExit("bench-gapless: needs PostgreSQL (DATABASE_URL=postgres://...)")
    return url


def _psql(url: str, sql: str) -> None:
    parts = urlsplit(url)
    env = {**os.environ, **({"PGPASSWORD": parts.password} if parts.password else {})}
    subprocess.run(
        ["psql", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432), "-U", parts.username or "postgres"]
        + ["-d", "postgres", "-q", "-c", sql],
        env=env,
        check=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 6)))
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", 5)))
    args = parser.parse_args()
    server = _server_url()
    _psql(server, f"DROP DATABASE IF EXISTS {DATABASE}")
    _psql(server, f"CREATE DATABASE {DATABASE}")
    parts = urlsplit(server)
    os.environ["DATABASE_URL"] = parts._replace(path=f"/{DATABASE}").geturl()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        stack = Stack(tmp)
        try:
            stack.django()
            from accounts.services import user_register
            from counters import services
            from counters.models import IssuedValue
            from counters.series import Series
            from tests.conftest import bearer

            user = user_register(username="bench", password="a-long-enough-passphrase")
            jwt = bearer(user).split()[1]
            services.counter_create(owner_id=user.id, name="fast")
            services.counter_create(owner_id=user.id, name="gapless", series=Series.of(gapless=True))
            app = f"http://127.0.0.1:{stack.app_port}/api/counters"
            runs = {"fast": [], "gapless": []}
            for number in range(args.rounds):
                for name in ("fast", "gapless") if number % 2 == 0 else ("gapless", "fast"):
                    result = wrk(
                        f"{app}/{name}/next",
                        CONNECTIONS,
                        args.seconds,
                        tmp,
                        method="POST",
                        token=jwt,
                        collect=str(tmp / f"{name}-{number}"),
                    )
                    runs[name].append(result)
                    print(f"round {number + 1} {name}: {result['rps']:.0f}/s p99 {result['p99']:.1f} ms", flush=True)
            values = []
            for path in tmp.glob("gapless-*.txt"):
                values += [line for line in path.read_text().split()]
            numbers = sorted(int(v) for v in values if v.isdigit())
            refused = len([v for v in values if not v.isdigit()])
            taken = services.counter_get(owner_id=user.id, name="gapless").value
            log = list(
                IssuedValue.objects.filter(counter__owner=user, counter__name="gapless")
                .order_by("value")
                .values_list("value", flat=True)
            )
            logged = len(log)
            # wrk stops mid-request at the end of each run: those numbers are taken and logged, unseen.
            exact = log == list(range(1, taken + 1)) and len(set(numbers)) == len(numbers) and set(numbers) <= set(log)
        finally:
            stack.stop()
    ratios = [g["rps"] / f["rps"] for g, f in zip(runs["gapless"], runs["fast"], strict=True)]
    report = _report(args, runs, ratios, len(numbers), taken, logged, refused, exact)
    print(report)
    _write(report)
    return 0 if exact and refused == 0 else 1


def _report(args, runs, ratios, answered, taken, logged, refused, exact) -> str:
    def med(name, key):
        return statistics.median(r[key] for r in runs[name])

    return (
        f"{MARKER}\n"
        f"{args.rounds} rounds of {args.seconds} s each, `next` with a JWT, wrk -t1 -c{CONNECTIONS}, gunicorn as "
        "in production (3 sync workers), PostgreSQL 15 on the same 2 cores, Redis with appendfsync always:\n\n"
        "| counter | requests/s (median) | p50 ms | p99 ms |\n|---|---|---|---|\n"
        f"| fast | {med('fast', 'rps'):.0f} | {med('fast', 'p50'):.1f} | {med('fast', 'p99'):.1f} |\n"
        f"| gapless | {med('gapless', 'rps'):.0f} | {med('gapless', 'p50'):.1f} | {med('gapless', 'p99'):.1f} |\n\n"
        f"gapless / fast, each round against the run beside it: median **{statistics.median(ratios):.2f}** "
        f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)}; from {min(ratios):.2f} to {max(ratios):.2f}).\n\n"
        f"The gapless answers: {answered} numbers, each once and each in the log, and the log exactly "
        f"1..{taken}: {exact}; the counter took {taken} and its log holds {logged} entries (the numbers "
        "wrk's last requests took as each run ended are logged, their answers unread); "
        f"refused answers: {refused}.\n"
    )


def _write(report: str) -> None:
    path = BASE_DIR / "BENCHMARKS.md"
    text = path.read_text()
    if MARKER in text:
        text = re.sub(rf"{re.escape(MARKER)}.*?(?=\n## |\Z)", report.rstrip() + "\n", text, flags=re.S)
        path.write_text(text)
    else:
        print("bench-gapless: BENCHMARKS.md has no marker: the table is printed above only")


if __name__ == "__main__":
    raise SystemExit(main())
