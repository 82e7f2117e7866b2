"""Failover with real Sentinels: no value handed out twice (`make test-ha`, and .ci/run).

Each test starts a primary, a replica and three Sentinels (tests/harness/ha.py), gunicorn on them, and
client threads that take `next` on a few counters throughout, keeping every value returned.
"""

import json
import time

import pytest

from tests.harness.ha import (
    MASTER,
    UNDEMOTABLE,
    Apps,
    Load,
    Replicated,
    fill_replica_link,
    manage_check,
    request,
    shared_database,
    user_with_counters,
    wait_for,
)

pytestmark = pytest.mark.ha

NAMES = ["a", "b", "c"]
PASSWORD = "a-long-enough-passphrase"
UNAVAILABLE = {b'{"detail":"Counter storage is unavailable, try again.","code":"counter_store_unavailable"}'}


def assert_no_duplicates(load: Load) -> None:
    repeated = load.duplicates()
    count = sum(len(values) for values in repeated.values())
    assert repeated == {}, f"{count} values of {len(load.taken)} handed out twice or more"


def kill_the_primary_under(load: Load, setup: Replicated) -> tuple[float, float]:
    """A second of load, `kill -9` of the primary, the Sentinels' promotion of the replica, a
    second more: (when it was killed, when the replica was promoted)."""
    load.run_for(1, at_least=300)
    killed = time.monotonic()
    setup.primary.kill()
    setup.wait_for_promotion(setup.replica)
    promoted = time.monotonic()
    load.run_for(1, at_least=300)
    return killed, promoted


def assert_after_above_before(load: Load, before: float, after: float) -> None:
    """Every value acknowledged after ``after`` is above every value acknowledged before ``before``."""
    for name in NAMES:
        earlier = [t.value for t in load.taken if t.name == name and t.at < before]
        later = [t.value for t in load.taken if t.name == name and t.at > after]
        assert earlier and later, (name, len(earlier), len(later))
        assert min(later) > max(earlier), (name, max(earlier), min(later))


def test_the_primary_killed_is_503_json_until_a_replica_is_promoted_and_no_value_repeats(tmp_path):
    with Replicated(tmp_path / "redis") as setup, Apps(tmp_path / "app", setup.addresses).serve() as port:
        token = user_with_counters(port, NAMES)
        with Load([port], token, NAMES) as load:
            killed, promoted = kill_the_primary_under(load, setup)
        assert_no_duplicates(load)
        assert set(load.statuses) <= {200, 503}, load.statuses
        assert load.statuses[503] > 0, (load.statuses, promoted - killed)  # while there was no primary
        assert load.bodies[503] == UNAVAILABLE
        assert_after_above_before(load, killed, promoted)


def test_a_replica_that_was_behind_is_promoted_and_no_value_repeats(tmp_path):
    with Replicated(tmp_path / "redis") as setup, Apps(tmp_path / "app", setup.addresses).serve() as port:
        token = user_with_counters(port, NAMES)
        with Load([port], token, NAMES) as load:
            load.run_for(1, at_least=300)
            setup.replica.pause()  # SIGSTOP: what the primary sends now piles up
            sent = fill_replica_link(setup.primary)
            load.run_for(1.5, at_least=300)  # acknowledged, and never to reach the replica
            acknowledged = Replicated.node(setup.primary).info("replication")["master_repl_offset"]
            killed = time.monotonic()
            setup.primary.kill()
            setup.replica.resume()
            setup.wait_for_promotion(setup.replica)
            promoted = time.monotonic()
            load.run_for(1, at_least=300)
        # The promoted replica really was behind: its history ends before the filler's end, so
        # every `next` acknowledged after the filler is missing from it.
        ended = Replicated.node(setup.replica).info("replication")["second_repl_offset"] - 1
        assert ended < sent < acknowledged, (ended, sent, acknowledged)
        assert_no_duplicates(load)
        assert set(load.statuses) <= {200, 503}, load.statuses
        assert_after_above_before(load, killed, promoted)


def test_a_split_brain_hands_out_no_value_twice(tmp_path):
    """The old primary cannot be demoted (UNDEMOTABLE), and stays writable: one app server keeps
    its connections to it, another starts after the failover and talks to the new primary."""
    with Replicated(tmp_path / "redis", primary_options=UNDEMOTABLE) as setup:
        apps = Apps(tmp_path / "app", setup.addresses)
        with apps.serve() as old:
            token = user_with_counters(old, NAMES)
            with Load([old], token, NAMES, threads=2) as on_old:  # sync workers: a connection each
                on_old.run_for(1, at_least=200)
                setup.sentinels[0].client().sentinel_failover(MASTER)
                setup.wait_for_promotion(setup.replica)
                split = offset(setup.primary)
                with apps.serve() as new, Load([new], token, NAMES, threads=2) as on_new:
                    on_new.run_for(3, at_least=300)
                    on_old.run_for(0, at_least=100)
        # Both sides took values during the split, each primary writing its own.
        assert role(setup.primary) == "master" and role(setup.replica) == "master"
        assert offset(setup.primary) > split
        assert {t.port for t in on_new.taken} == {new}
        together = Load([], token, NAMES)
        together.taken = on_old.taken + on_new.taken
        assert_no_duplicates(together)
        assert set(on_old.statuses) | set(on_new.statuses) <= {200, 503}


def test_two_app_servers_on_one_database_through_a_failover(tmp_path):
    with Replicated(tmp_path / "redis") as setup, shared_database() as database:
        apps = Apps(tmp_path / "app", setup.addresses, database=database)
        with apps.serve() as one, apps.serve() as two:
            token = user_with_counters(one, NAMES)
            with Load([one, two], token, NAMES, threads=8) as load:
                killed, promoted = kill_the_primary_under(load, setup)
        assert {t.port for t in load.taken} == {one, two}
        assert_no_duplicates(load)
        assert set(load.statuses) <= {200, 503}, load.statuses
        assert_after_above_before(load, killed, promoted)


def once_served(port: int, method: str, path: str, credential: str) -> tuple[int, bytes]:
    """The first answer that is not the 503 of a moment with no primary (at most 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        status, body = request(port, method, path, None, credential)
        if status != 503 or time.monotonic() > deadline:
            return status, body
        time.sleep(0.1)


def offset(server) -> int:
    return Replicated.node(server).info("replication")["master_repl_offset"]


def role(server) -> str:
    return Replicated.node(server).info("replication")["role"]


def test_manage_py_check_names_the_topology_and_what_weakens_it(tmp_path):
    with Replicated(tmp_path / "redis") as setup:

        def check() -> tuple[list[str], str]:
            return manage_check(tmp_path, REDIS_SENTINELS=setup.addresses)

        out, err = check()
        assert out[0] == (
            f"Counters on Sentinel master 'mymaster': primary 127.0.0.1:{setup.primary.port}, replicas "
            f"127.0.0.1:{setup.replica.port}; 3 of 3 Sentinels answer; fenced by the primary's replication id."
        )
        assert "counters.W008" in err and "counters.W007" not in err
        Replicated.node(setup.replica).config_set("replica-read-only", "no")
        Replicated.node(setup.primary).config_set("min-replicas-to-write", 1)
        out, err = check()
        assert f"?: (counters.W007) Replica(s) 127.0.0.1:{setup.replica.port} accept writes" in err
        assert "counters.W008" not in err
        setup.sentinels[0].stop()
        out, err = check()
        assert "; 2 of 3 Sentinels answer;" in out[0]


def test_an_api_key_entry_a_lagging_replica_kept_is_not_trusted_after_a_failover(tmp_path):
    """A key revoked just before a failover, whose entry's deletion the replica never got: its
    copy there (written by the old primary) is checked in SQL, where the key is gone: 401."""
    with Replicated(tmp_path / "redis") as setup:
        with Apps(tmp_path / "app", setup.addresses).serve() as port:
            token = user_with_counters(port, [])
            status, body = request(port, "POST", "/api/keys", {"name": "cron"}, token)
            assert status == 201, body
            key = json.loads(body)
            assert request(port, "POST", "/api/counters/default/next", None, key["key"])[0] == 200  # cached
            wait_for(lambda: Replicated.node(setup.replica).keys("ctr:*:~key:*"), 10, "the entry on the replica")
            setup.replica.pause()
            fill_replica_link(setup.primary)  # what the primary sends next stays with it
            assert request(port, "DELETE", f"/api/keys/{key['id']}", None, token)[0] == 204
            setup.primary.kill()
            setup.replica.resume()
            setup.wait_for_promotion(setup.replica)
            [entry] = Replicated.node(setup.replica).keys("ctr:*:~key:*")  # the stale copy
            assert Replicated.node(setup.replica).hget(entry, "o") is not None
            status, body = once_served(port, "POST", "/api/counters/default/next", key["key"])
            assert (status, json.loads(body)) == (
                401,
                {"detail": "Invalid or revoked API key.", "code": "invalid_api_key"},
            )


def test_a_token_revocation_a_lagging_replica_never_got_still_refuses_after_a_failover(tmp_path):
    """A password change (every access token issued before it refused) acknowledged just before
    a failover, whose mark the replica never got: the promoted replica reads SQL's mark."""
    with Replicated(tmp_path / "redis") as setup:
        with Apps(tmp_path / "app", setup.addresses).serve() as port:
            status, body = request(port, "POST", "/api/auth/register", {"username": "r", "password": PASSWORD})
            token = json.loads(body)["access"]
            assert request(port, "POST", "/api/counters/default/next", None, token)[0] == 200  # mark cached
            wait_for(lambda: Replicated.node(setup.replica).keys("ctr:*:~revoked"), 10, "the mark on the replica")
            setup.replica.pause()
            fill_replica_link(setup.primary)  # what the primary sends next stays with it
            change = {"old_password": PASSWORD, "new_password": "another-long-passphrase"}
            assert request(port, "POST", "/api/auth/password", change, token)[0] == 204
            setup.primary.kill()
            setup.replica.resume()
            setup.wait_for_promotion(setup.replica)
            [mark] = Replicated.node(setup.replica).keys("ctr:*:~revoked")
            assert Replicated.node(setup.replica).hget(mark, "m") == b"0"  # the stale copy: never revoked
            status, body = once_served(port, "POST", "/api/counters/default/next", token)
            assert (status, json.loads(body)) == (401, {"detail": "Token has been revoked.", "code": "token_revoked"})
