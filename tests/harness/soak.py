"""`make soak`: the never-repeat guarantee end to end, under load and faults.

gunicorn with several workers serves the app against a Redis of its own; client threads take
`next` on a few counters as fast as they can; meanwhile Redis is, at random moments, killed
with -9 and restarted from its AOF, flushed, or replaced by an empty server. Every value
returned is kept, and at the end one line says what happened. Exits 1 on any duplicate.

With --sentinel (`make soak SOAK_SENTINEL=1`) the counters live on a primary and a replica under
three Sentinels (tests/harness/ha.py), and the faults are failovers: a manual one (the old primary stays
writable for a while), the primary killed with -9, and the primary killed while the replica is
stopped and behind (tests/test_ha.py stages the same). A killed server comes back as a replica.

With --cluster (`make soak SOAK_CLUSTER=1`) they live on a six-node Redis Cluster (tests/harness/cluster.py),
each counter a user's of its own so that they spread over the shards, and the faults are a
primary killed with -9, a primary killed while its replica is stopped and behind, and a counter's
slot moved to another primary under load (tests/test_cluster.py stages each).

    python -m tests.harness.soak [--seconds 180] [--workers 4] [--clients 16] [--counters 4] [--block 50]
                         [--sentinel | --cluster]
"""

import argparse
import collections
import http.client
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis as redis_py

from incrementific.redis_server import RedisServer, free_port
from tests.harness.cluster import Cluster, key_slot
from tests.harness.ha import MASTER, Replicated, fill_replica_link, token_user_id, wait_for

BASE_DIR = Path(__file__).resolve().parents[2]


class Service:
    def __init__(self, tmp: Path, workers: int, block: int, sentinel: bool = False, cluster: bool = False):
        self.replicated = Replicated(tmp / "replicated") if sentinel else None
        self.cluster = Cluster(tmp / "cluster") if cluster else None
        self.redis = None if sentinel or cluster else RedisServer(tmp / "redis").start()
        self.port = free_port()
        self.env = {
            **os.environ,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "JWT_SIGNING_KEY": secrets.token_urlsafe(50),
            "DATA_DIR": str(tmp),
            **(
                {"REDIS_URL": "", "REDIS_SENTINELS": self.replicated.addresses}
                if sentinel
                else {"REDIS_URL": "", "REDIS_CLUSTER_NODES": self.cluster.seeds}
                if cluster
                else {"REDIS_URL": self.redis.url}
            ),
            "COUNTER_BLOCK_SIZE": str(block),
            "WEB_CONCURRENCY": str(workers),
            "ACCESS_LOG": "False",
            "LOG_LEVEL": "ERROR",
            "GUNICORN_LOG_LEVEL": "warning",
            "PORT": str(self.port),
            "JWT_ACCESS_MINUTES": "600",
        }
        manage = [sys.executable, str(BASE_DIR / "manage.py")]
        subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=self.env, check=True)
        self.log = tmp / "service.log"  # expected 503s while Redis is down: kept out of the way
        self.gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(BASE_DIR / "gunicorn.conf.py"), "incrementific.wsgi"],
            env=self.env,
            cwd=BASE_DIR,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("soak: the service did not come up")
            time.sleep(0.2)

    def request(self, method, path, body=None, token=None, conn=None):
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = conn.getresponse()
        data = response.read()
        if own:
            conn.close()
        return response.status, data

    def stop(self):
        self.gunicorn.terminate()
        self.gunicorn.wait(30)
        if self.replicated:
            self.replicated.stop()
        elif self.cluster:
            self.cluster.stop()
        else:
            self.redis.stop()


def failovers(setup: Replicated, stop: threading.Event, counts: collections.Counter, seed: int):
    """Every 8 to 12 s (Sentinel waits twice failover-timeout between two failovers of one master)."""
    rng = random.Random(seed)
    while not stop.wait(rng.uniform(8, 12)):
        primary = setup.servers[setup.named_primary()]
        [replica] = [server for server in setup.servers.values() if server is not primary]
        kind = rng.choice(["manual failover", "kill -9", "kill -9, replica behind"])
        if kind == "manual failover":
            setup.sentinels[0].client().sentinel_failover(MASTER)
        elif kind == "kill -9":
            primary.kill()
        else:
            replica.pause()
            fill_replica_link(primary)
            time.sleep(rng.uniform(0.2, 1))
            primary.kill()
            replica.resume()
        setup.wait_for_promotion(replica)
        if kind != "manual failover":
            primary.start()  # back from its AOF; the Sentinels make it a replica of the new primary
        wait_for(
            lambda p=primary: Replicated.node(p).info("replication").get("master_link_status") == "up",
            90,
            f"the old primary ({primary.port}) to follow the new one after a {kind}",
            every=0.2,
        )
        counts[kind] += 1


def cluster_faults(cluster: Cluster, keys: list[str], stop: threading.Event, counts: collections.Counter, seed: int):
    """Every 4 to 8 s, on the shard of one of the soak's counters (``keys``)."""
    rng = random.Random(seed)
    while not stop.wait(rng.uniform(4, 8)):
        key = rng.choice(keys)
        primary = cluster.primary_of(key)
        kind = rng.choice(["kill -9 of a primary", "kill -9, replica behind", "slot moved"])
        if kind == "slot moved":
            others = [
                n["port"] for n in cluster.nodes() if n["role"] == "primary" and n["slots"] and n["port"] != primary
            ]
            cluster.move_slot(key_slot(key), rng.choice(others))
            counts[kind] += 1
            continue
        replica = cluster.replica_of(primary)
        if kind == "kill -9 of a primary":
            cluster.servers[primary].kill()
        else:
            cluster.servers[replica].pause()
            cluster.fill_replica_link(primary, cluster.filler_key(primary, {key_slot(k) for k in keys}))
            time.sleep(rng.uniform(0.2, 1))
            cluster.servers[primary].kill()
            cluster.servers[replica].resume()
        cluster.wait_for_promotion(replica)
        cluster.servers[primary].start()  # back from its AOF and nodes.conf: a replica of the new primary
        wait_for(
            lambda p=primary: cluster.node(p).info("replication").get("master_link_status") == "up",
            90,
            f"the old primary ({primary}) to follow the new one after a {kind}",
            every=0.2,
        )
        counts[kind] += 1


def faults(service: Service, stop: threading.Event, counts: collections.Counter, seed: int, keys: list[str]):
    if service.replicated:
        return failovers(service.replicated, stop, counts, seed)
    if service.cluster:
        return cluster_faults(service.cluster, keys, stop, counts, seed)
    rng = random.Random(seed)
    redis = service.redis
    while not stop.wait(rng.uniform(2, 6)):
        kind = rng.choice(["kill -9", "flushall", "empty server"])
        if kind == "kill -9":
            redis.kill()
            time.sleep(rng.uniform(0, 0.5))
            redis.start()
        elif kind == "flushall":
            redis_py.Redis(port=redis.port).flushall()
        else:
            redis.stop()
            shutil.rmtree(redis.data_dir)
            redis.start()
        counts[kind] += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 180)))
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--counters", type=int, default=4)
    parser.add_argument("--block", type=int, default=50)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--sentinel", action="store_true", default=bool(os.environ.get("SOAK_SENTINEL")))
    parser.add_argument("--cluster", action="store_true", default=bool(os.environ.get("SOAK_CLUSTER")))
    args = parser.parse_args()
    if args.sentinel and args.cluster:
        parser.error("--sentinel or --cluster, not both")

    tmp = Path(tempfile.mkdtemp(prefix="incrementific-soak-"))
    service = Service(tmp, args.workers, args.block, args.sentinel, args.cluster)
    try:
        names = [f"c{n}" for n in range(args.counters)]
        tokens, keys = {}, []
        for name in names:  # a user each: on a Cluster, their counters spread over the shards
            status, body = service.request(
                "POST", "/api/auth/register", {"username": f"soak-{name}", "password": secrets.token_urlsafe(16)}
            )
            assert status == 201, body
            tokens[name] = json.loads(body)["access"]
            status, body = service.request("POST", "/api/counters", {"name": name}, tokens[name])
            assert status == 201, body
            keys.append(f"ctr:{{u{token_user_id(tokens[name])}}}:{name}")

        values: dict[str, list[int]] = {name: [] for name in names}
        statuses: collections.Counter = collections.Counter()
        lock = threading.Lock()
        stop = threading.Event()
        deadline = time.monotonic() + args.seconds

        def client(n: int):
            conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
            name = names[n % len(names)]
            while time.monotonic() < deadline:
                try:
                    status, body = service.request("POST", f"/api/counters/{name}/next", None, tokens[name], conn)
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
                    status, body = "connection error", b""
                with lock:
                    statuses[status] += 1
                    if status == 200:
                        values[name].append(json.loads(body)["value"])
            conn.close()

        fault_counts: collections.Counter = collections.Counter()
        injector = threading.Thread(target=faults, args=(service, stop, fault_counts, args.seed, keys))
        clients = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
        injector.start()
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        stop.set()
        injector.join()
    finally:
        service.stop()

    duplicates = sum(len(v) - len(set(v)) for v in values.values())
    topology = "Sentinel" if args.sentinel else "a Redis Cluster" if args.cluster else "one Redis"
    gaps = [b - a - 1 for v in values.values() for a, b in zip(sorted(v), sorted(v)[1:], strict=False)]
    requests = sum(statuses.values())
    others = {k: v for k, v in statuses.items() if k not in (200, 503)}
    print(
        f"soak: {requests} requests in {args.seconds:.0f} s ({statuses[200]} ok, {statuses[503]} 503, "
        f"other {others or 0}); {topology}, {args.workers} workers, {args.clients} clients, {args.counters} counters, "
        f"block {args.block}, seed {args.seed}; faults {sum(fault_counts.values())} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(fault_counts.items()))}); "
        f"duplicates {duplicates}; largest gap {max(gaps, default=0)}"
    )
    if duplicates or others:
        print(f"soak: FAILED; the service's log is {service.log}")
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
