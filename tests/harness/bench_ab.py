"""`python -m tests.harness.bench_ab REF`: is this tree faster than REF? Side by side, in one run.

The app at REF (a git worktree) and the app in this tree run under the same gunicorn settings
against the same Redis and database, beside the anchor; wrk loads `next` with a JWT (or an API
key) on each in turn, round after round, so that the machine's drift falls on both alike.

    python -m tests.harness.bench_ab 0123abc [--rounds 5] [--seconds 8] [--connections 32]
    python -m tests.harness.bench_ab HEAD --ref-env COUNTER_RATE_LIMIT=1000000/second   # what a setting costs
    python -m tests.harness.bench_ab HEAD~1 --key   # next with an API key instead
    python -m tests.harness.bench_ab HEAD --ref-env REDIS_URL= --ref-env REDIS_CLUSTER_NODES=127.0.0.1:7000
                                            # the same code on a Redis Cluster (python -m tests.harness.cluster)

One run is not a result: the same two trees measured +19% and +0.6% workers' CPU a request an
hour apart. So the last lines say how sure the run is: each round's difference in CPU a request
between the two trees (they run back to back in it, so the machine's drift falls on both), the
median, the range and the standard deviation of those differences, and how many rounds a
difference of 3% would need to stand out of that spread (two standard errors).
"""

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from incrementific.redis_server import free_port
from tests.harness.bench import BASE_DIR, GUNICORN, Stack, wait_for, wrk


def workers_cpu(master_pid: int) -> float:
    """CPU seconds (user + system) used so far by the worker processes of a gunicorn master.
    Divided by the requests served, it is the stack's cost per request: far steadier than
    requests/s on a shared machine, where other tenants take the cores, not our instructions."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == master_pid:  # ppid
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


class Spread:
    """The rounds' paired differences (this tree's CPU a request over REF's, less 1)."""

    def __init__(self, ref_cpu: list[float], this_cpu: list[float]):
        self.differences = [this / ref - 1 for ref, this in zip(ref_cpu, this_cpu, strict=True)]

    @property
    def median(self) -> float:
        return statistics.median(self.differences)

    @property
    def deviation(self) -> float:
        return statistics.stdev(self.differences) if len(self.differences) > 1 else math.inf

    def rounds_to_resolve(self, difference: float = 0.03) -> float:
        """Rounds whose mean difference's standard error is half of ``difference``."""
        return math.ceil((2 * self.deviation / difference) ** 2) if math.isfinite(self.deviation) else math.inf

    def __str__(self) -> str:
        d = self.differences
        return (
            f"this tree against REF, workers' CPU a request, round by round: "
            f"{', '.join(f'{x:+.1%}' for x in d)}\n"
            f"  median {self.median:+.1%}, from {min(d):+.1%} to {max(d):+.1%},"
            f" standard deviation {self.deviation:.1%};"
            f" a 3% difference stands out of this spread in {self.rounds_to_resolve()} rounds"
        )


def launch(tree: Path, env: dict) -> tuple[subprocess.Popen, int]:
    """The app of a source tree under gunicorn with that tree's config, on a free port."""
    port = free_port()
    app = subprocess.Popen(
        [*GUNICORN[:-1], str(tree / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{port}", "incrementific.wsgi"],
        env=env,
        cwd=tree,
    )
    return app, port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ref")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--ref-env", action="append", default=[], help="KEY=VALUE for the app at REF only")
    parser.add_argument("--key", action="store_true", help="next with an API key instead of a JWT")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="incrementific-ab-"))
    other = tmp / "ref"
    subprocess.run(["git", "worktree", "add", "--detach", str(other), args.ref], cwd=BASE_DIR, check=True)
    stack = Stack(tmp)
    # Both apps are started the same way, one after the other, after the stack's own (which
    # idles): an A/A run with the stack's app as "this tree" measured it 12 to 16% slower than
    # the same code started here.
    ref_app, port = launch(other, {**stack.env, **dict(item.split("=", 1) for item in args.ref_env)})
    this_app, this_port = launch(BASE_DIR, stack.env)
    try:
        wait_for(port)
        wait_for(this_port)
        stack.django()
        from accounts.services import api_key_create, user_register
        from tests.conftest import bearer

        user = user_register(username="ab", password="a-long-enough-passphrase")
        # An API key made by this tree; the app at REF must accept it (any REF since keys exist does).
        token = api_key_create(user_id=user.id, name="ab")[1] if args.key else bearer(user).split()[1]
        path = "/api/counters/default/next"
        targets = {
            "anchor": (f"http://127.0.0.1:{stack.anchor_port}/", {}, stack.anchor.pid),
            args.ref: (f"http://127.0.0.1:{port}{path}", {"method": "POST", "token": token}, ref_app.pid),
            "this tree": (f"http://127.0.0.1:{this_port}{path}", {"method": "POST", "token": token}, this_app.pid),
        }
        results = {name: [] for name in targets}
        for n in range(args.rounds):
            # The two apps swap places every round: whichever runs later in a round meets a
            # longer AOF and a warmer (or busier) machine, and an A/A run showed 16% from that.
            order = ["anchor", args.ref, "this tree"] if n % 2 == 0 else ["anchor", "this tree", args.ref]
            for name in order:
                url, kw, master = targets[name]
                before = workers_cpu(master)
                result = wrk(url, args.connections, args.seconds, tmp, **kw)
                result["cpu_us"] = (workers_cpu(master) - before) / result["requests"] * 1e6
                results[name].append(result)
            print(
                f"round {n + 1}: "
                + ", ".join(
                    f"{k} {v[-1]['rps']:.0f}/s p99 {v[-1]['p99']:.1f} ms cpu {v[-1]['cpu_us']:.0f} us"
                    for k, v in results.items()
                ),
                flush=True,
            )
    finally:
        for app in (ref_app, this_app):
            app.terminate()
            app.wait(30)
        stack.stop()
        subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=BASE_DIR, check=False)
    failed = {name: sum(r["errors"] for r in runs) for name, runs in results.items() if any(r["errors"] for r in runs)}
    if failed:
        # A 401 is answered much faster than a next: such a "result" would be nonsense. (The app
        # at REF must accept this tree's tokens: the same signing key, issuer and audience.)
        print(f"bench_ab: non-2xx answers, no comparison made: {failed}")
        return 1
    anchor = statistics.median(r["rps"] for r in results["anchor"])
    anchor_p99 = statistics.median(r["p99"] for r in results["anchor"])
    anchor_cpu = statistics.median(r["cpu_us"] for r in results["anchor"])
    print(f"medians of {args.rounds} rounds, {args.seconds} s each, {args.connections} connections:")
    for name, runs in results.items():
        rps = statistics.median(r["rps"] for r in runs)
        p50 = statistics.median(r["p50"] for r in runs)
        p99 = statistics.median(r["p99"] for r in runs)
        cpu = statistics.median(r["cpu_us"] for r in runs)
        ratio, p99_ratio = rps / anchor, p99 / anchor_p99
        print(
            f"  {name:<12} {rps:6.0f} req/s ({ratio:.2f} of the anchor)  p50 {p50:5.1f} ms"
            f"  p99 {p99:5.1f} ms ({p99_ratio:.2f}x)"
            f"  workers' CPU {cpu:5.0f} us/request ({anchor_cpu / cpu:.2f} of the anchor's rate)"
        )
    print(Spread([r["cpu_us"] for r in results[args.ref]], [r["cpu_us"] for r in results["this tree"]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
