"""`make bench`: how fast the service answers, against its own anchor, in one run.

The service runs as in production (gunicorn with gunicorn.conf.py, DEBUG off) against a private
Redis with the default persistence (AOF, appendfsync always). In the same run, with the same
gunicorn settings and the same Redis, wrk loads the anchor (tests/harness/bench_anchor.py: one INCR and a
JSON body), so every figure is also a ratio to the floor any Python web stack stands on, which
is the number that means something on a shared, noisy machine. The machine's speed moves from
one second to the next, so the scenarios run in rounds between runs of the anchor, and each
figure is a median over rounds, each round's ratio taken against the anchor around it. Every
`next` answer is kept and checked for duplicates. The table is printed and written to
BENCHMARKS.md.

    python -m tests.harness.bench [--rounds 5] [--seconds 4] [--big]
"""

import argparse
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

from incrementific.redis import connection, keys
from incrementific.redis_server import RedisServer, free_port

BASE_DIR = Path(__file__).resolve().parents[2]
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", str(BASE_DIR / "gunicorn.conf.py")]

WRK_SCRIPT = """
wrk.method = "{method}"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
{auth}
local threads = 0
function setup(thread) threads = threads + 1; thread:set("id", threads) end
local out
function init(args)
  if "{collect}" ~= "" then out = io.open("{collect}-" .. id .. ".txt", "w") end
end
function response(status, headers, body)
  if out then
    if status == 200 then out:write(string.match(body, '"value":%s*(%d+)') or "?", "\\n")
    else out:write("status ", status, "\\n") end
  end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %.3f %d %d %d\\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50), latency:percentile(99), e.status + e.connect + e.read + e.write + e.timeout))
end
"""


def wait_for(port: int, path: str = "/healthz") -> None:
    import http.client

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"bench: nothing answers on port {port}")


def wrk(url: str, connections: int, seconds: float, tmp: Path, *, method="GET", body=None, token=None, collect=""):
    script = tmp / "script.lua"
    script.write_text(
        WRK_SCRIPT.format(
            method=method,
            body="nil" if body is None else json.dumps(json.dumps(body)),
            auth=f'wrk.headers["Authorization"] = "Bearer {token}"' if token else "",
            collect=collect,
        )
    )
    run = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "5s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    requests, duration, p50, p99, errors = re.search(r"RESULT (\S+) (\S+) (\S+) (\S+) (\S+)", run.stdout).groups()
    return {
        "rps": int(requests) / float(duration),
        "p50": int(p50) / 1000,
        "p99": int(p99) / 1000,
        "errors": int(errors),
        "requests": int(requests),
    }


class Stack:
    """The service and the anchor, each under gunicorn, sharing one private Redis."""

    def __init__(self, tmp: Path, *, reference: bool = False):
        self.tmp = tmp
        self.redis = RedisServer(tmp / "redis").start()
        self.env = {
            **os.environ,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "JWT_SIGNING_KEY": secrets.token_urlsafe(50),
            "DATA_DIR": str(tmp),
            "REDIS_URL": self.redis.url,
            "ACCESS_LOG": "False",
            "GUNICORN_LOG_LEVEL": "warning",
            "LOG_LEVEL": "WARNING",
            "JWT_ACCESS_MINUTES": "600",
        }
        self.env.pop("DEBUG", None)
        for command in (["migrate", "--noinput"], ["collectstatic", "--noinput"]):
            subprocess.run([sys.executable, "manage.py", *command, "-v0"], env=self.env, cwd=BASE_DIR, check=True)
        self.app_port, self.anchor_port = free_port(), free_port()
        self.app = self._gunicorn(self.app_port, "incrementific.wsgi")
        self.anchor = self._gunicorn(self.anchor_port, "tests.harness.bench_anchor:application")
        self.others = [self.app, self.anchor]
        wait_for(self.app_port)
        wait_for(self.anchor_port, "/")
        if reference:  # the plain DRF views (tests/harness/bench_reference.py)
            self.reference_port = free_port()
            self.others.append(self._gunicorn(self.reference_port, "tests.harness.bench_reference:application"))
            wait_for(self.reference_port, "/plain")

    def _gunicorn(self, port, app):
        return subprocess.Popen([*GUNICORN, "--bind", f"127.0.0.1:{port}", app], env=self.env, cwd=BASE_DIR)

    def django(self):
        os.environ.update(self.env)
        os.environ["DJANGO_SETTINGS_MODULE"] = "incrementific.settings"
        import django

        django.setup()

    def stop(self):
        for proc in self.others:
            proc.terminate()
            proc.wait(30)
        self.redis.stop()


def populate(users: int, counters_per_user: int) -> None:
    """Many users and counters at once (bulk SQL, pipelined Redis), for the "big" figures."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from counters.models import Counter
    from counters.services import rendered

    User = get_user_model()
    password = make_password(secrets.token_urlsafe(16))
    first = User.objects.count()
    User.objects.bulk_create([User(username=f"bulk{first + n}", password=password) for n in range(users)])
    ids = list(User.objects.filter(username__startswith="bulk").values_list("id", flat=True))
    rows = [Counter(owner_id=uid, name=f"c{n}", reserved_through=1000) for uid in ids for n in range(counters_per_user)]
    Counter.objects.bulk_create(rows, batch_size=5000)
    client = connection.client()
    created = rendered(Counter.objects.first().created_at)
    for start in range(0, len(rows), 5000):
        pipe = client.pipeline(transaction=False)
        for row in rows[start : start + 5000]:
            pipe.hset(keys.counter(row.owner_id, row.name), mapping={"v": 0, "l": 1000, "c": created})
        pipe.execute()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", 4)), help="per wrk run")
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 5)))
    parser.add_argument("--big", action="store_true", help="also measure with 100,000 counters of 10,000 users")
    parser.add_argument("--only", help="run only the scenarios whose names contain this (and the anchor)")
    parser.add_argument("--connections", default="1,32", help="comma-separated connection counts")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("bench: wrk is needed (Debian: apt-get install wrk; `make bench` installs it as root)")

    tmp = Path(tempfile.mkdtemp(prefix="incrementific-bench-"))
    stack = Stack(tmp, reference=True)
    try:
        stack.django()
        from accounts.services import api_key_create, user_register
        from counters import services
        from tests.conftest import bearer

        user = user_register(username="bench", password=secrets.token_urlsafe(16))
        jwt = bearer(user).split()[1]
        _, key = api_key_create(user_id=user.id, name="bench")
        for name in ("keyed", "read", "written"):
            services.counter_create(owner_id=user.id, name=name)
        lister = user_register(username="lister", password=secrets.token_urlsafe(16))
        for n in range(49):
            services.counter_create(owner_id=lister.id, name=f"c{n:02}")
        lister_jwt = bearer(lister).split()[1]

        app = f"http://127.0.0.1:{stack.app_port}"
        anchor_url = f"http://127.0.0.1:{stack.anchor_port}/"
        reference = f"http://127.0.0.1:{stack.reference_port}"
        # One counter each: a `next` counter only ever rises, so all of its answers, from every
        # round, must differ; nothing else (set) touches it.
        scenarios = [
            ("next, JWT", dict(method="POST", url=f"{app}/api/counters/default/next", token=jwt, collect=True)),
            ("next, API key", dict(method="POST", url=f"{app}/api/counters/keyed/next", token=key, collect=True)),
            ("current", dict(method="GET", url=f"{app}/api/counters/read", token=jwt)),
            ("set", dict(method="PUT", url=f"{app}/api/counters/written", token=jwt, body={"value": 5})),
            ("list of 50", dict(method="GET", url=f"{app}/api/counters", token=lister_jwt)),
            (PLAIN_DRF, dict(method="POST", url=f"{reference}/plain")),
            ("reference: plain DRF view, simplejwt", dict(method="POST", url=f"{reference}/jwt", token=jwt)),
        ]
        if args.only:
            scenarios = [(label, kw) for label, kw in scenarios if args.only in label]
        collected = {label: tmp / f"values-{n}" for n, (label, kw) in enumerate(scenarios) if kw.get("collect")}

        def run(label, connections, url, collect=False, **kw):
            out = f"{collected[label]}-c{connections}-{time.monotonic_ns()}" if collect else ""
            result = wrk(url, connections, args.seconds, tmp, collect=out, **kw)
            print(f"{label:<28} c={connections:<3} {result['rps']:8.0f} req/s  p50 {result['p50']:6.2f} ms"
                  f"  p99 {result['p99']:6.2f} ms  errors {result['errors']}", flush=True)  # fmt: skip
            return result

        # Rounds: the anchor, every scenario, the anchor again, and so on. Each scenario's ratio
        # is taken per round, against the two anchor runs around that round, so a machine that
        # speeds up or slows down between rounds moves both sides of the ratio alike.
        measured = {}  # connections: (anchor runs, {label: [run per round]})
        for connections in [int(c) for c in args.connections.split(",")]:
            anchors, runs = [run("anchor", connections, anchor_url)], {label: [] for label, _ in scenarios}
            for number in range(args.rounds):
                print(f"bench: round {number + 1} of {args.rounds} at {connections} connections", flush=True)
                for label, kw in scenarios:
                    runs[label].append(run(label, connections, **kw))
                anchors.append(run("anchor", connections, anchor_url))
            measured[connections] = (anchors, runs)

        big = []
        if args.big:
            before = connection.client().info("memory")["used_memory"]
            populate(10_000, 10)
            memory = (connection.client().info("memory")["used_memory"] - before) / 100_000
            urls = {label: kw["url"] for label, kw in scenarios}
            next_url, list_url = urls["next, JWT"], urls["list of 50"]
            for connections in (1, 32):
                result = wrk(next_url, connections, 2 * args.seconds, tmp, method="POST", token=jwt)
                big.append(("next, JWT, 100,000 counters", connections, result))
            result = wrk(list_url, 32, 2 * args.seconds, tmp, token=lister_jwt)
            big.append(("list of 50, 100,000 counters", 32, result))
        duplicates = check_values(list(collected.values()))
    finally:
        stack.stop()
    write_report(measured, big, memory if args.big else None, duplicates, args)
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if duplicates else 0


def check_values(prefixes: list[Path]) -> int:
    """Every next answer of a scenario, from every round and wrk thread: duplicates (must be 0)."""
    duplicates = 0
    for prefix in prefixes:
        values = []
        for path in prefix.parent.glob(prefix.name + "-*.txt"):
            values += [line for line in path.read_text().splitlines() if not line.startswith("status")]
        duplicates += len(values) - len(set(values))
        print(f"bench: {len(values)} next answers collected, {len(values) - len(set(values))} duplicates")
    return duplicates


# A round counts only if the anchor before it and the one after it are within this of each other:
# otherwise the machine moved under the round, and its ratios are ratios to nothing in particular.
# (Once, before rounds, the anchor went from 2,690 to 1,523 req/s within one run while Redis's
# fsyncs waited on a busy disk.)
MAX_ANCHOR_DRIFT = 0.2
# The bar: `next` with a JWT is to beat this view (no authentication at all) in the same run.
PLAIN_DRF = "reference: plain DRF view, no auth"


def steady(anchors: list[dict]) -> list[bool]:
    """For each round: were the anchor runs before and after it within MAX_ANCHOR_DRIFT?"""
    return [max(a["rps"], b["rps"]) / min(a["rps"], b["rps"]) - 1 <= MAX_ANCHOR_DRIFT for a, b in pairwise(anchors)]


def ratios(anchors: list[dict], runs: list[dict]) -> tuple[list[float], list[float]]:
    """Per steady round: (req/s ÷ anchor, p99 ÷ anchor's p99), against the anchors around it."""
    rps, p99 = [], []
    for (before, after), ok, r in zip(pairwise(anchors), steady(anchors), runs, strict=True):
        if ok:
            rps.append(r["rps"] / ((before["rps"] + after["rps"]) / 2))
            p99.append(r["p99"] / ((before["p99"] + after["p99"]) / 2))
    return rps, p99


def beside(anchors: list[dict], runs: list[dict], reference: list[dict]) -> list[float]:
    """Per steady round: req/s ÷ the reference's req/s in the same round."""
    return [r["rps"] / ref["rps"] for ok, r, ref in zip(steady(anchors), runs, reference, strict=True) if ok]


def row(label: str, connections: int, runs: list[dict], ratio: str, p99_ratio: str) -> str:
    median = statistics.median
    return (
        f"| {label} | {connections} | {median(r['rps'] for r in runs):.0f} | {median(r['p50'] for r in runs):.2f} "
        f"| {median(r['p99'] for r in runs):.2f} | {ratio} | {p99_ratio} |"
    )


def write_report(measured, big, memory, duplicates, args):
    cores = os.cpu_count()
    lines = [
        "| scenario | conns | req/s | p50 ms | p99 ms | req/s ÷ anchor (lowest–highest round) | p99 ÷ anchor |",
        "|---|---|---|---|---|---|---|",
    ]
    steady_rounds = {}
    median = statistics.median
    for connections, (anchors, runs) in measured.items():
        steady_rounds[connections] = sum(steady(anchors))
        lowest, highest = min(a["rps"] for a in anchors), max(a["rps"] for a in anchors)
        lines.append(row("anchor", connections, anchors, f"1 ({lowest:.0f}–{highest:.0f} req/s)", "1"))
        for label, rounds in runs.items():
            rps, p99 = ratios(anchors, rounds)
            if rps:
                lines.append(
                    row(
                        label,
                        connections,
                        rounds,
                        f"{median(rps):.2f} ({min(rps):.2f}–{max(rps):.2f})",
                        f"{median(p99):.2f}",
                    )
                )
            else:
                lines.append(row(label, connections, rounds, "no steady round", "—"))
    for label, connections, r in big:
        anchors = measured[connections][0] if connections in measured else None
        if anchors is None:
            continue
        anchor_rps = statistics.median(a["rps"] for a in anchors)
        anchor_p99 = statistics.median(a["p99"] for a in anchors)
        lines.append(
            f"| {label} | {connections} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} "
            f"| {r['rps'] / anchor_rps:.2f} (one run) | {r['p99'] / anchor_p99:.2f} |"
        )
    table = "\n".join(lines)
    footer = (
        f"\nMedians of {args.rounds} rounds of {args.seconds} s; each round's ratios are to the anchor runs "
        f"before and after it, and a round whose two anchor runs differ by more than {MAX_ANCHOR_DRIFT:.0%} "
        f"is left out of them (steady rounds: "
        + ", ".join(f"{steady} of {args.rounds} at {c} connections" for c, steady in steady_rounds.items())
        + f"). Duplicates among the collected `next` answers: {duplicates}."
    )
    for connections, (anchors, runs) in measured.items():
        if "next, JWT" not in runs or PLAIN_DRF not in runs:
            continue
        if per_round := beside(anchors, runs["next, JWT"], runs[PLAIN_DRF]):
            footer += (
                f" At {connections} connections, `next` with a JWT served {median(per_round):.2f} times the"
                " requests/s of the plain DRF view with no authentication, in the same rounds"
                f" ({min(per_round):.2f}–{max(per_round):.2f})."
            )
    if memory is not None:
        footer += f" Redis memory: {memory:.0f} bytes a counter (used_memory grown by 100,000 counters)."
    print(table + footer)
    if args.only or args.connections != "1,32":
        return  # a partial run is for experiments, not for the record
    if any(2 * steady < args.rounds for steady in steady_rounds.values()):
        print("bench: fewer than half the rounds were steady; BENCHMARKS.md is left as it was")
        return
    report = BASE_DIR / "BENCHMARKS.md"
    text = report.read_text() if report.exists() else "# Benchmarks\n"
    marker = "<!-- bench:latest -->"
    command = (
        f"python -m tests.harness.bench --rounds {args.rounds} --seconds {args.seconds}{' --big' if args.big else ''}"
    )
    block = (
        f"{marker}\n`{command}` on {cores} cores, {time.strftime('%Y-%m-%d')}; gunicorn "
        f"{os.environ.get('WEB_CONCURRENCY', '3')} sync workers with the access log off (all alike), Redis with "
        f"appendfsync always, wrk -t1 on the same machine:\n\n{table}\n{footer.strip()}\n{marker}"
    )
    if marker in text:
        text = re.sub(re.escape(marker) + ".*?" + re.escape(marker), lambda _: block, text, flags=re.S)
    else:
        text += "\n" + block + "\n"
    report.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
