"""`python -m tests.harness.bench_ir`: instructions per `next` request, counted by valgrind's callgrind.

Requests per second on a shared machine drift by tens of percent from one minute to the next;
instruction counts do not. Each handler of incrementific/wsgi.py (the full middleware list, and
the one bearer requests to the API take) serves POST /api/counters/default/next with a JWT
in-process, N times and 0 times under callgrind, closing each response as a WSGI server does
(Django sends request_finished from there); the difference over N is the cost of one
request in the app's own code (Django, DRF, ours, redis-py; not gunicorn, not Redis's side).

    python -m tests.harness.bench_ir [--requests 300]
        [--scenario next|next-key|next-scoped-key|next-provider|current|set]
        [--bearer-only | --entry] [--sentinel | --cluster]

`--sentinel` serves from a primary under three Sentinels (tests/harness/ha.py), where the state is fenced;
`--cluster` from a six-node Redis Cluster (tests/harness/cluster.py), fenced too, through redis-py's RedisCluster.

Scenarios: `next` with a JWT (the default), `next` with an API key (or one limited to `next` on
its counter), reading a counter
(`current`) and setting it (`set`, a JSON body) with a JWT.

Two runs of one tree, at one path and with the same options, agree to a few instructions. But
the same request path counted from 1,170,355 to 1,194,242 at three paths, with and without
--bearer-only, and with a docstring of this file changed: memory layout moves with each of these,
and dict and set lookups with it. So compare two versions at one path with the same options, one
after the other (`git checkout` in one worktree), and take a difference under 1% for none.
"""

import argparse
import gc
import io
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
HANDLERS = ["browser_application", "bearer_application"]
SCENARIOS = {  # name: (method, path, credential, JSON body)
    "next": ("POST", "/api/counters/default/next", "jwt", b""),
    "next-key": ("POST", "/api/counters/default/next", "key", b""),
    # A least-privilege key (accounts/scopes.py): next only, on its counter only.
    "next-scoped-key": ("POST", "/api/counters/default/next", "scoped-key", b""),
    # An access token of an OpenID Connect provider (tests/harness/oidc.py, on Node.js): its subject's
    # account is made by the first request.
    "next-provider": ("POST", "/api/counters/default/next", "provider", b""),
    "current": ("GET", "/api/counters/default", "jwt", b""),
    "set": ("PUT", "/api/counters/default", "jwt", b'{"value": 5}'),
}


def child(handler_name: str, n: int, scenario: str) -> None:
    from django.core.management import call_command

    from incrementific import wsgi

    call_command("migrate", verbosity=0)
    from accounts.services import api_key_create, user_register
    from tests.conftest import bearer
    from tests.helpers import wsgi_environ

    method, path, credential, body = SCENARIOS[scenario]
    user = user_register(username="bench", password="a-long-enough-passphrase")
    scope = {"counters": ["default"], "actions": ["next"]} if credential == "scoped-key" else {}
    if credential == "provider":
        token = "Bearer " + os.environ["BENCH_PROVIDER_TOKEN"]
    elif credential == "jwt":
        token = bearer(user)
    else:
        token = "Bearer " + api_key_create(user_id=user.id, name="b", **scope)[1]
    app = getattr(wsgi, handler_name)

    def start_response(status, headers, exc_info=None):
        assert status.startswith("200"), status

    def request():
        environ = wsgi_environ(method, path, HTTP_AUTHORIZATION=token)
        if body:
            environ.update(CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(body)))
            environ["wsgi.input"] = io.BytesIO(body)
        response = app(environ, start_response)
        b"".join(response)
        response.close()  # as every WSGI server does: Django's request_finished work runs here

    for _ in range(20):  # first-request work (imports, caches) stays out of the difference
        request()
    # As gunicorn.conf.py's post_worker_init does: a full collection would otherwise walk all of
    # Django once in some runs and not in others, about 45 million instructions (BENCHMARKS.md).
    gc.freeze()
    for _ in range(n):
        request()


def instructions(handler_name: str, n: int, scenario: str, redis: dict[str, str]) -> int:
    data_dir = tempfile.mkdtemp(prefix="incrementific-ir-")
    out = Path(data_dir) / "callgrind.out"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "incrementific.settings",
        "DEBUG": "False",
        "SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
        "JWT_SIGNING_KEY": "bench-only-jwt-key-" + "y" * 40,
        "DATA_DIR": data_dir,
        **redis,  # REDIS_URL, or REDIS_SENTINELS
        # str hashes are salted per process, which moves dict and set layouts, and with them
        # the count, by a few percent from run to run: one fixed salt for every run.
        "PYTHONHASHSEED": "0",
    }
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-m", "tests.harness.bench_ir",
         "--child", handler_name, str(n), scenario],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    for line in run.stderr.splitlines():
        if "refs:" in line:
            return int(line.split("refs:")[1].replace(",", "").strip())
    raise RuntimeError(run.stderr[-2000:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--scenario", choices=SCENARIOS, default="next")
    parser.add_argument("--bearer-only", action="store_true", help="count the bearer handler only (half the time)")
    parser.add_argument(
        "--entry",
        action="store_true",
        help="count wsgi.application, the entry point (request ids included) that picks the bearer handler",
    )
    parser.add_argument("--sentinel", action="store_true", help="a primary under Sentinels: the fenced store")
    parser.add_argument("--cluster", action="store_true", help="a six-node Redis Cluster, fenced")
    parser.add_argument("--child", nargs=3, metavar=("HANDLER", "N", "SCENARIO"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.child[2])
        return 0

    from incrementific.redis_server import RedisServer
    from tests.harness.cluster import Cluster
    from tests.harness.ha import Replicated

    handlers = ["application"] if args.entry else HANDLERS[1:] if args.bearer_only else HANDLERS
    provider, provider_env = None, {}
    if SCENARIOS[args.scenario][2] == "provider":
        from tests.harness import oidc

        reason = oidc.missing()
        if reason:
            raise SystemExit(reason)
        provider = oidc.Provider(Path(tempfile.mkdtemp(prefix="incrementific-ir-oidc-"))).start()
        provider_env = {
            "OIDC_ISSUER": provider.issuer,
            "OIDC_API_AUDIENCE": oidc.AUDIENCE,
            "BENCH_PROVIDER_TOKEN": provider.service_token(),
        }
    runs = [(name, n) for name in handlers for n in (0, args.requests)]
    servers, redis = [], []
    try:
        for _ in runs:
            folder = Path(tempfile.mkdtemp(prefix="incrementific-ir-redis-"))
            if args.sentinel:
                servers.append(Replicated(folder))
                redis.append({"REDIS_URL": "", "REDIS_SENTINELS": servers[-1].addresses})
            elif args.cluster:
                servers.append(Cluster(folder))
                redis.append({"REDIS_URL": "", "REDIS_CLUSTER_NODES": servers[-1].seeds})
            else:
                servers.append(RedisServer(folder).start())
                redis.append({"REDIS_URL": servers[-1].url})
        redis = [{**env, **provider_env} for env in redis]
        with ThreadPoolExecutor(max_workers=2) as pool:
            counts = list(
                pool.map(lambda job: instructions(*job[0], args.scenario, job[1]), zip(runs, redis, strict=True))
            )
    finally:
        for server in servers:
            server.stop()
        if provider is not None:
            provider.stop()
    per_request = {name: (counts[2 * i + 1] - counts[2 * i]) / args.requests for i, name in enumerate(handlers)}
    method, path, credential, _ = SCENARIOS[args.scenario]
    with_what = {
        "jwt": "a JWT",
        "key": "an API key",
        "scoped-key": "a next-only API key",
        "provider": "a provider's access token",
    }[credential]
    print(f"instructions per {method} {path} with {with_what}, in-process ({args.requests} requests):")
    for name, count in per_request.items():
        print(f"  {name:20} {count:12,.0f}")
    if len(per_request) == 2:
        print(f"  bearer/browser       {per_request['bearer_application'] / per_request['browser_application']:12.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
