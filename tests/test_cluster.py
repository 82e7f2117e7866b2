"""A real Redis Cluster under load: failovers and a reshard hand out no value twice
(`make test-cluster`, and .ci/run).

Each test starts six nodes (tests/harness/cluster.py), gunicorn on them, users whose counters lie in
every shard, and client threads that take `next` on those counters throughout, keeping every
value returned (tests/harness/ha.py's Load). What a test measured (503s, skipped values, throughput)
is printed at the end of the run.
"""

import json
import time

import pytest

from tests.harness.cluster import REPORTED, Cluster, key_slot
from tests.harness.ha import Apps, Load, manage_check, request, shared_database, token_user_id, wait_for

pytestmark = pytest.mark.cluster
UNAVAILABLE = {b'{"detail":"Counter storage is unavailable, try again.","code":"counter_store_unavailable"}'}
TIMEOUT = 1  # REDIS_TIMEOUT_SECONDS of tests/harness/ha.py's Apps


def counter_key(token: str, name: str) -> str:
    return f"ctr:{{u{token_user_id(token)}}}:{name}"


def users_in_every_shard(port: int, cluster: Cluster, per_shard: int = 2) -> dict[str, str]:
    """Users, each with a counter of their own (named n<i>), until every primary holds the slots of
    ``per_shard`` of them: {counter name: its owner's token}."""
    tokens: dict[str, str] = {}
    per_primary: dict[int, int] = {}
    primaries = [n["port"] for n in cluster.nodes() if n["role"] == "primary" and n["slots"]]
    for n in range(60):
        status, body = request(
            port, "POST", "/api/auth/register", {"username": f"c{n}", "password": "a-long-passphrase"}
        )
        assert status == 201, body
        token, name = json.loads(body)["access"], f"n{n}"
        status, body = request(port, "POST", "/api/counters", {"name": name}, token)
        assert status == 201, body
        primary = cluster.primary_of(counter_key(token, name))
        if per_primary.get(primary, 0) < per_shard:
            per_primary[primary] = per_primary.get(primary, 0) + 1
            tokens[name] = token
        if len(per_primary) == len(primaries) and all(v >= per_shard for v in per_primary.values()):
            return tokens
    raise AssertionError(f"60 users did not cover every shard: {per_primary}")


def assert_no_duplicates(load: Load) -> None:
    repeated = load.duplicates()
    count = sum(len(values) for values in repeated.values())
    assert repeated == {}, f"{count} values of {len(load.taken)} handed out twice or more"


def values(load: Load, name: str, start: float = 0, end: float = float("inf")) -> list[int]:
    return [t.value for t in load.taken if t.name == name and start < t.at < end]


def assert_after_above_before(load: Load, names: list[str], before: float, after: float) -> dict[str, int]:
    """Every value of these counters acknowledged after ``after`` is above every one acknowledged
    before ``before``; returns, per counter, how many values lie skipped between the two."""
    skipped = {}
    for name in names:
        earlier, later = values(load, name, end=before), values(load, name, start=after)
        assert earlier and later, (name, len(earlier), len(later))
        assert min(later) > max(earlier), (name, max(earlier), min(later))
        taken_between = [v for v in values(load, name, before, after) if max(earlier) < v < min(later)]
        skipped[name] = min(later) - max(earlier) - 1 - len(taken_between)
    return skipped


def on_port(cluster: Cluster, tokens: dict[str, str], port: int) -> list[str]:
    """The counters whose slot the primary on ``port`` serves."""
    return [name for name, token in tokens.items() if cluster.primary_of(counter_key(token, name)) == port]


def shard_of_the_first(cluster: Cluster, tokens: dict[str, str]) -> tuple[int, int, list[str]]:
    """The primary that serves the first counter's slot, its replica, and every counter it serves."""
    name, token = next(iter(tokens.items()))
    primary = cluster.primary_of(counter_key(token, name))
    return primary, cluster.replica_of(primary), on_port(cluster, tokens, primary)


def test_a_primary_killed_is_503_for_its_slots_alone_until_its_replica_takes_over(tmp_path):
    with Cluster(tmp_path / "redis") as cluster, Apps(tmp_path / "app", cluster=cluster.seeds).serve() as port:
        tokens = users_in_every_shard(port, cluster)
        names = list(tokens)
        victim, replica, theirs = shard_of_the_first(cluster, tokens)
        with Load([port], tokens, names, threads=12) as load:
            load.run_for(1, at_least=300)
            killed = time.monotonic()
            cluster.servers[victim].kill()
            cluster.wait_for_promotion(replica)
            promoted = time.monotonic()
            load.run_for(1, at_least=300)
        assert_no_duplicates(load)
        assert set(load.statuses) <= {200, 503}, load.statuses
        assert load.statuses[503] > 0, (load.statuses, promoted - killed)
        assert load.bodies[503] == UNAVAILABLE
        # a killed node refuses at once: a 503 never waits for a timeout
        assert load.slowest[503] < TIMEOUT, load.slowest
        skipped = assert_after_above_before(load, theirs, killed, promoted)
        # the other shards served all along
        others = [name for name in names if name not in theirs]
        assert all(values(load, name, killed + 0.5, promoted) for name in others), (killed, promoted)
        REPORTED.append(
            f"cluster kill -9: {load.statuses[503]} 503s of {sum(load.statuses.values())} "
            f"over {promoted - killed:.1f} s "
            f"until the replica took over; slowest 503 {load.slowest[503] * 1000:.0f} ms; skipped per counter {skipped}"
        )


def test_a_replica_that_was_behind_takes_over_and_no_value_repeats(tmp_path):
    with Cluster(tmp_path / "redis") as cluster, Apps(tmp_path / "app", cluster=cluster.seeds).serve() as port:
        tokens = users_in_every_shard(port, cluster)
        names = list(tokens)
        victim, replica, theirs = shard_of_the_first(cluster, tokens)
        avoid = {key_slot(counter_key(token, name)) for name, token in tokens.items()}
        with Load([port], tokens, names, threads=12) as load:
            load.run_for(1, at_least=300)
            cluster.servers[replica].pause()  # SIGSTOP: what the primary sends now piles up
            sent = cluster.fill_replica_link(victim, cluster.filler_key(victim, avoid))
            load.run_for(1, at_least=300)  # acknowledged, and never to reach the replica
            acknowledged = cluster.node(victim).info("replication")["master_repl_offset"]
            killed = time.monotonic()
            cluster.servers[victim].kill()
            cluster.servers[replica].resume()
            cluster.wait_for_promotion(replica)
            promoted = time.monotonic()
            load.run_for(1, at_least=300)
        # The promoted replica really was behind: its history ends before the filler's end.
        ended = cluster.node(replica).info("replication")["second_repl_offset"] - 1
        assert ended < sent < acknowledged, (ended, sent, acknowledged)
        assert_no_duplicates(load)
        assert set(load.statuses) <= {200, 503}, load.statuses
        skipped = assert_after_above_before(load, theirs, killed, promoted)
        REPORTED.append(
            f"cluster lagging replica: {(acknowledged - ended) / 1e6:.1f} MB behind, 0 repeats of {len(load.taken)}; "
            f"skipped per counter {skipped}"
        )


def test_a_reshard_under_load_moves_a_busy_users_slot_and_no_value_repeats(tmp_path):
    with Cluster(tmp_path / "redis") as cluster, Apps(tmp_path / "app", cluster=cluster.seeds).serve() as port:
        tokens = users_in_every_shard(port, cluster, per_shard=1)
        names = list(tokens)
        busy = names[0]
        slot = key_slot(counter_key(tokens[busy], busy))
        source = cluster.primary_of(counter_key(tokens[busy], busy))
        target = next(
            n["port"] for n in cluster.nodes() if n["role"] == "primary" and n["slots"] and n["port"] != source
        )
        with Load([port], tokens, [busy, *names], threads=8) as load:  # half the threads on the busy user
            load.run_for(1, at_least=300)
            moving = time.monotonic()
            moved_keys = cluster.move_slot(slot, target)
            moved = time.monotonic()
            load.run_for(1, at_least=300)
        assert cluster.primary_of(counter_key(tokens[busy], busy)) == target
        assert moved_keys >= 2  # the counter and its owner's revocation mark, at least
        assert_no_duplicates(load)
        assert set(load.statuses) <= {200, 503}, load.statuses
        skipped = assert_after_above_before(load, [busy], moving, moved)
        REPORTED.append(
            f"cluster reshard: slot {slot} ({moved_keys} keys) moved in {(moved - moving) * 1000:.0f} ms under load; "
            f"{load.statuses[503]} 503s of {sum(load.statuses.values())}; "
            f"the busy counter skipped {skipped[busy]} values"
        )


def test_three_app_servers_on_one_cluster_and_one_database_hand_out_no_value_twice(tmp_path):
    with Cluster(tmp_path / "redis") as cluster, shared_database() as database:
        apps = Apps(tmp_path / "app", cluster=cluster.seeds, database=database)
        with apps.serve() as one, apps.serve() as two, apps.serve() as three:
            tokens = users_in_every_shard(one, cluster)
            names = list(tokens)
            with Load([one], tokens, names, threads=6) as alone:
                alone.run_for(3, at_least=300)
            with Load([one, two, three], tokens, names, threads=18) as spread:
                spread.run_for(3, at_least=300)
        assert {t.port for t in spread.taken} == {one, two, three}
        together = Load([], tokens, names)
        together.taken = alone.taken + spread.taken
        assert_no_duplicates(together)
        assert set(alone.statuses) | set(spread.statuses) == {200}, (alone.statuses, spread.statuses)

        def rate(load: Load) -> float:
            times = sorted(t.at for t in load.taken)
            return len(times) / (times[-1] - times[0])

        REPORTED.append(
            f"cluster, {'PostgreSQL' if database else 'SQLite'}: one gunicorn {rate(alone):,.0f} next/s, "
            f"three gunicorns {rate(spread):,.0f} next/s (2 workers each; this machine's 2 cores are shared by all)"
        )


def test_manage_py_check_names_every_shard(tmp_path):
    with Cluster(tmp_path / "redis") as cluster:

        def check() -> tuple[list[str], str]:
            return manage_check(tmp_path, REDIS_CLUSTER_NODES=cluster.seeds)

        out, err = check()
        primaries = sorted((n for n in cluster.nodes() if n["role"] == "primary"), key=lambda n: n["port"])
        assert out[0].startswith("Counters on a Redis Cluster of 3 shards: "), out
        for primary in primaries:
            replica = cluster.replica_of(primary["port"])
            slots = sum(high - low + 1 for low, high in primary["slots"])
            assert f"127.0.0.1:{primary['port']} ({slots} slots, replicas 127.0.0.1:{replica})" in out[0]
        assert out[0].endswith("; fenced by each primary's replication id.")
        assert err.count("counters.W008") == 3  # min-replicas-to-write 0 on each primary
        assert err.count("counters.W002") == 3  # appendfsync everysec on each
        first = primaries[0]["port"]
        cluster.node(first).config_set("appendfsync", "always")
        cluster.node(cluster.replica_of(first)).config_set("replica-read-only", "no")
        out, err = check()
        assert err.count("counters.W002") == 2 and f"127.0.0.1:{first}: Redis appendfsync" not in err
        assert f"(counters.W007) Replica(s) 127.0.0.1:{cluster.replica_of(first)} accept writes" in err


def test_a_hung_primary_is_a_503_in_bounded_time_and_its_slots_come_back(tmp_path):
    """SIGSTOP, not a kill: the node neither refuses nor answers. Its slots' requests are 503s
    after REDIS_TIMEOUT_SECONDS, not asked again; then its replica takes over."""
    with (
        Cluster(tmp_path / "redis") as cluster,
        Apps(tmp_path / "app", cluster=cluster.seeds, workers=4).serve() as port,
    ):
        tokens = users_in_every_shard(port, cluster, per_shard=1)
        names = list(tokens)
        victim, replica, _ = shard_of_the_first(cluster, tokens)
        # a thread per counter, a worker more than threads: no request waits for a worker, so each
        # answer's time is the service's own
        with Load([port], tokens, names, threads=3) as load:
            load.run_for(1, at_least=200)
            stopped = time.monotonic()
            cluster.servers[victim].pause()
            status, body = request(port, "GET", "/api/counters", None, tokens[names[0]])  # a page read
            assert (status, body, time.monotonic() - stopped < 2 * TIMEOUT) == (503, next(iter(UNAVAILABLE)), True)
            cluster.wait_for_promotion(replica)
            promoted = time.monotonic()
            # each process reads the slot map again after its next timeout on the hung node
            wait_for(lambda: values(load, names[0], promoted), 30, "its counter served by the new primary")
            served = min(t.at for t in load.taken if t.name == names[0] and t.at > promoted)
            load.run_for(1, at_least=200)
            cluster.servers[victim].resume()  # it comes back as a replica of the new primary
            wait_for(
                lambda: cluster.node(victim).info("replication")["role"] == "slave", 20, "the old primary to rejoin"
            )
        assert_no_duplicates(load)
        assert set(load.statuses) <= {200, 503}, load.statuses
        assert load.statuses[503] > 0
        assert load.slowest[503] < 2 * TIMEOUT, load.slowest  # one try: a retry would wait a second time
        assert_after_above_before(load, [names[0]], stopped, promoted)
        REPORTED.append(
            f"cluster SIGSTOP of a primary: {load.statuses[503]} 503s, slowest {load.slowest[503] * 1000:.0f} ms, "
            f"replica took over after {promoted - stopped:.1f} s, its counter served {served - promoted:.1f} s later"
        )


def test_redis_py_gets_the_cluster_from_any_one_seed(tmp_path):
    """REDIS_CLUSTER_NODES may name one node: the client learns the rest (CLUSTER SLOTS)."""
    with Cluster(tmp_path / "redis") as cluster:
        port = next(iter(cluster.servers))
        with Apps(tmp_path / "app", cluster=f"127.0.0.1:{port}").serve() as app:
            tokens = users_in_every_shard(app, cluster, per_shard=1)
            for name, token in tokens.items():
                status, body = request(app, "POST", f"/api/counters/{name}/next", None, token)
                assert (status, json.loads(body)["value"]) == (200, 1), (name, body)
        held = [cluster.node(p).dbsize() for p, n in sorted(cluster.servers.items()) if n.process.poll() is None]
        assert sum(1 for keys in held if keys) == 6  # every shard holds counters, replicas their copies


def test_the_readmes_redis_user_serves_on_a_cluster(tmp_path):
    """docs/redis-in-production.md's ACL lines (the user, and what a Cluster adds) on every node: the service runs as
    that user, the topology's own commands (the slot map, ASK) included."""
    from tests.test_redis_acl import PASSWORD, acl_lines

    with Cluster(tmp_path / "redis") as cluster:
        for port in cluster.servers:
            for line in acl_lines():
                cluster.node(port).execute_command(*line.split())
        env = {"REDIS_URL": f"redis://incrementific:{PASSWORD}@/0"}
        with Apps(tmp_path / "app", cluster=cluster.seeds, env=env).serve() as port:
            tokens = users_in_every_shard(port, cluster, per_shard=1)
            for name, token in tokens.items():
                status, body = request(port, "POST", f"/api/counters/{name}/next", None, token)
                assert (status, json.loads(body)["value"]) == (200, 1), body
                status, body = request(port, "GET", "/api/counters", None, token)
                assert status == 200 and [c["value"] for c in json.loads(body)["results"]] == [0, 1], body
            busy = next(iter(tokens))
            slot = key_slot(counter_key(tokens[busy], busy))
            source = cluster.primary_of(counter_key(tokens[busy], busy))
            target = next(n["port"] for n in cluster.nodes() if n["role"] == "primary" and n["port"] != source)
            taken = []

            def take():
                status, body = request(port, "POST", f"/api/counters/{busy}/next", None, tokens[busy])
                assert status == 200, body
                taken.append(json.loads(body)["value"])

            # midway the keys are on the new primary and the old one answers ASK; then MOVED
            cluster.move_slot(slot, target, midway=take)
            take()
            assert 1 < taken[0] < taken[1], taken
        out, err = manage_check(tmp_path, REDIS_CLUSTER_NODES=cluster.seeds, **env)
        assert out[0].startswith("Counters on a Redis Cluster of 3 shards"), (out, err)
        assert "counters.W001" not in err
