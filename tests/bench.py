"""`make bench`: how fast the service answers, against its own anchor, in one run.

The service runs as in production (gunicorn with gunicorn.conf.py, DEBUG off) against a private
Redis with the default persistence (AOF, appendfsync always). In the same run, with the same
gunicorn settings and the same Redis, wrk loads the anchor (tests/bench_anchor.py: one INCR and a
JSON body), so every figure is also a ratio to the floor any Python web stack stands on, which
is the number that means something on a shared, noisy machine. Every `next` answer is kept and
checked for duplicates. The table is printed and written to BENCHMARKS.md.

    python -m tests.bench [--seconds 10] [--big]
"""

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from incrementific.redis_server import RedisServer, free_port

BASE_DIR = Path(__file__).resolve().parent.parent
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

    def __init__(self, tmp: Path):
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
        self.anchor = self._gunicorn(self.anchor_port, "tests.bench_anchor:application")
        wait_for(self.app_port)
        wait_for(self.anchor_port, "/")

    def _gunicorn(self, port, app):
        return subprocess.Popen([*GUNICORN, "--bind", f"127.0.0.1:{port}", app], env=self.env, cwd=BASE_DIR)

    def django(self):
        os.environ.update(self.env)
        os.environ["DJANGO_SETTINGS_MODULE"] = "incrementific.settings"
        import django

        django.setup()

    def stop(self):
        for proc in (self.app, self.anchor):
            proc.terminate()
            proc.wait(30)
        self.redis.stop()


def populate(users: int, counters_per_user: int) -> None:
    """Many users and counters at once (bulk SQL, pipelined Redis), for the "big" figures."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from counters import store
    from counters.models import Counter
    from counters.services import rendered

    User = get_user_model()
    password = make_password(secrets.token_urlsafe(16))
    first = User.objects.count()
    User.objects.bulk_create([User(username=f"bulk{first + n}", password=password) for n in range(users)])
    ids = list(User.objects.filter(username__startswith="bulk").values_list("id", flat=True))
    rows = [Counter(owner_id=uid, name=f"c{n}", reserved_through=1000) for uid in ids for n in range(counters_per_user)]
    Counter.objects.bulk_create(rows, batch_size=5000)
    client = store._client()
    created = rendered(Counter.objects.first().created_at)
    for start in range(0, len(rows), 5000):
        pipe = client.pipeline(transaction=False)
        for row in rows[start : start + 5000]:
            pipe.hset(store.key(row.owner_id, row.name), mapping={"v": 0, "l": 1000, "c": created})
        pipe.execute()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", 10)))
    parser.add_argument("--big", action="store_true", help="also measure with 100,000 counters of 10,000 users")
    parser.add_argument("--only", help="run only the scenarios whose names contain this (and the anchor)")
    parser.add_argument("--connections", default="1,32", help="comma-separated connection counts")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("bench: wrk is needed (Debian: apt-get install wrk; `make bench` installs it as root)")

    tmp = Path(tempfile.mkdtemp(prefix="incrementific-bench-"))
    stack = Stack(tmp)
    try:
        stack.django()
        from accounts.services import api_key_create, user_register
        from counters import services, store
        from tests.conftest import bearer

        user = user_register(username="bench", password=secrets.token_urlsafe(16))
        jwt = bearer(user).split()[1]
        _, key = api_key_create(user_id=user.id, name="bench")
        lister = user_register(username="lister", password=secrets.token_urlsafe(16))
        for n in range(49):
            services.counter_create(owner_id=lister.id, name=f"c{n:02}")
        lister_jwt = bearer(lister).split()[1]

        app = f"http://127.0.0.1:{stack.app_port}"
        scenarios = [
            ("next, JWT", dict(method="POST", url=f"{app}/api/counters/default/next", token=jwt, collect=True)),
            ("next, API key", dict(method="POST", url=f"{app}/api/counters/default/next", token=key, collect=True)),
            ("current", dict(method="GET", url=f"{app}/api/counters/default", token=jwt)),
            ("set", dict(method="PUT", url=f"{app}/api/counters/default", token=jwt, body={"value": 5})),
            ("list of 50", dict(method="GET", url=f"{app}/api/counters", token=lister_jwt)),
        ]
        rows, collected = [], []

        def run(label, connections, url, collect=False, **kw):
            out = str(tmp / f"values-{len(collected)}") if collect else ""
            result = wrk(url, connections, args.seconds, tmp, collect=out, **kw)
            if collect:
                collected.append(out)
            rows.append((label, connections, result))
            print(f"{label:<28} c={connections:<3} {result['rps']:8.0f} req/s  p50 {result['p50']:6.2f} ms"
                  f"  p99 {result['p99']:6.2f} ms  errors {result['errors']}", flush=True)  # fmt: skip
            return result

        anchors = {}
        if args.only:
            scenarios = [(label, kw) for label, kw in scenarios if args.only in label]
        for connections in [int(c) for c in args.connections.split(",")]:
            anchors[connections] = [run("anchor", connections, f"http://127.0.0.1:{stack.anchor_port}/")]
            for label, kw in scenarios:
                if label.startswith("next"):
                    store.set_value(user.id, "default", 0)  # each collected run starts from 0
                run(label, connections, **dict(kw))
            anchors[connections].append(run("anchor (again)", connections, f"http://127.0.0.1:{stack.anchor_port}/"))

        big = []
        if args.big:
            before = store._client().info("memory")["used_memory"]
            populate(10_000, 10)
            memory = (store._client().info("memory")["used_memory"] - before) / 100_000
            next_url, list_url = scenarios[0][1]["url"], scenarios[-1][1]["url"]
            for connections in (1, 32):
                result = wrk(next_url, connections, args.seconds, tmp, method="POST", token=jwt)
                big.append(("next, JWT, 100,000 counters", connections, result))
            big.append(("list of 50, 100,000 counters", 32, wrk(list_url, 32, args.seconds, tmp, token=lister_jwt)))
        duplicates = check_values(collected)
    finally:
        stack.stop()
    write_report(rows, anchors, big, memory if args.big else None, duplicates, args)
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if duplicates else 0


def check_values(files: list[str]) -> int:
    """Every next answer of a run, from every wrk thread: duplicates found (must be 0)."""
    duplicates = 0
    for prefix in files:
        values = []
        for path in Path(prefix).parent.glob(Path(prefix).name + "-*.txt"):
            values += [line for line in path.read_text().splitlines() if not line.startswith("status")]
        duplicates += len(values) - len(set(values))
        print(f"bench: {len(values)} next answers collected, {len(values) - len(set(values))} duplicates")
    return duplicates


# How far the anchor may move between its two runs at one connection count (before and after
# the scenarios) for the run to be written to BENCHMARKS.md.
MAX_ANCHOR_DRIFT = 0.2


def drift(runs: list[dict]) -> float:
    rates = [r["rps"] for r in runs]
    return max(rates) / min(rates) - 1


def write_report(rows, anchors, big, memory, duplicates, args):
    cores = os.cpu_count()
    lines = [
        "| scenario | conns | req/s | p50 ms | p99 ms | req/s ÷ anchor | p99 ÷ anchor |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, connections, r in rows + big:
        anchor_rps = sum(a["rps"] for a in anchors[connections]) / len(anchors[connections])
        anchor_p99 = sum(a["p99"] for a in anchors[connections]) / len(anchors[connections])
        lines.append(
            f"| {label} | {connections} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} "
            f"| {r['rps'] / anchor_rps:.2f} | {r['p99'] / anchor_p99:.2f} |"
        )
    table = "\n".join(lines)
    footer = f"\nDuplicates among the collected `next` answers: {duplicates}."
    if memory is not None:
        footer += f" Redis memory: {memory:.0f} bytes a counter (used_memory grown by 100,000 counters)."
    print(table + footer)
    if args.only or args.connections != "1,32":
        return  # a partial run is for experiments, not for the record
    drifted = {c: runs for c, runs in anchors.items() if drift(runs) > MAX_ANCHOR_DRIFT}
    if drifted:
        # Every figure is a ratio to the anchor; an anchor that moved this much during the run
        # makes them ratios to nothing in particular.
        for connections, runs in drifted.items():
            print(f"bench: the anchor moved from {runs[0]['rps']:.0f} to {runs[1]['rps']:.0f} req/s during the run "
                  f"at {connections} connections ({drift(runs):.0%}, more than {MAX_ANCHOR_DRIFT:.0%})")  # fmt: skip
        print("bench: the machine was too noisy for the record; BENCHMARKS.md is left as it was")
        return
    report = BASE_DIR / "BENCHMARKS.md"
    text = report.read_text() if report.exists() else "# Benchmarks\n"
    marker = "<!-- bench:latest -->"
    block = (
        f"{marker}\n`python -m tests.bench --seconds {args.seconds}{' --big' if args.big else ''}` on "
        f"{cores} cores, {time.strftime('%Y-%m-%d')}; gunicorn {os.environ.get('WEB_CONCURRENCY', '3')} sync "
        f"workers, Redis with appendfsync always, wrk -t1 on the same machine:\n\n{table}\n{footer.strip()}\n{marker}"
    )
    if marker in text:
        text = re.sub(re.escape(marker) + ".*?" + re.escape(marker), lambda _: block, text, flags=re.S)
    else:
        text += "\n" + block + "\n"
    report.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
