import pytest

from counters import store
from counters.checks import check_counter_redis
from incrementific.redis import connection, keys
from incrementific.redis_server import RedisServer


def ids(warnings) -> list[str]:
    return [w.id for w in warnings]


def test_the_recommended_configuration_passes(private_redis):
    assert check_counter_redis() == []


def test_appendfsync_everysec_is_a_warning(private_redis):
    connection.client().config_set("appendfsync", "everysec")
    [warning] = check_counter_redis()
    assert warning.id == "counters.W002"
    assert warning.msg.startswith("Redis appendfsync is 'everysec': a crash can bring counters back stale")


def test_rdb_snapshots_only_is_a_warning(private_redis):
    client = connection.client()
    client.config_set("appendonly", "no")
    client.config_set("save", "3600 1")
    assert ids(check_counter_redis()) == ["counters.W003"]


def test_no_persistence_is_a_warning(private_redis, tmp_path):
    private_redis.use(RedisServer(tmp_path / "volatile", appendonly=False).start())
    assert ids(check_counter_redis()) == ["counters.W004"]


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu", "allkeys-random"])
def test_an_evicting_policy_is_a_warning(private_redis, policy):
    connection.client().config_set("maxmemory-policy", policy)
    assert ids(check_counter_redis()) == ["counters.W005"]


def test_volatile_policies_pass_since_counter_keys_never_expire(private_redis):
    connection.client().config_set("maxmemory-policy", "volatile-lru")
    assert check_counter_redis() == []


def test_counter_keys_with_a_ttl_are_a_warning(private_redis):
    store.create(1, "a", value=0, limit=3, created="x")
    store.create(1, "b", value=0, limit=3, created="x")
    connection.client().expire(keys.counter(1, "b"), 600)
    [warning] = check_counter_redis()
    assert warning.id == "counters.W006"
    assert warning.msg == "1 counter key(s) in Redis expire, e.g. ctr:{u1}:b."


def test_an_unreachable_redis_is_a_warning_not_a_crash(private_redis):
    private_redis.stop()
    [warning] = check_counter_redis()
    assert warning.id == "counters.W001"


def test_manage_py_check_runs_it(private_redis, capsys):
    from django.core.management import call_command

    connection.client().config_set("maxmemory-policy", "allkeys-lru")
    call_command("check")
    assert "counters.W005" in capsys.readouterr().err


def test_commands_that_need_no_redis_do_not_check_it(private_redis, capsys, db):
    """migrate, createsuperuser and the rest: a Redis they do not use is none of their business."""
    from django.core.management import call_command

    connection.client().config_set("maxmemory-policy", "allkeys-lru")
    call_command("migrate", verbosity=0)
    call_command("createsuperuser", username="root", email="", interactive=False, verbosity=0)
    assert capsys.readouterr().err == ""
    call_command("check")
    assert "counters.W005" in capsys.readouterr().err


def test_rate_windows_are_not_counters_with_a_ttl(private_redis, settings):
    settings.COUNTER_RATE_LIMIT = "5/minute"
    store.create(1, "a", value=0, limit=3, created="x")
    store.next_value(1, "a", 1)
    assert connection.client().keys("*~rate*")
    assert check_counter_redis() == []
