from counters import services
from counters.models import Counter
from incrementific.redis.keys import counter as key
from tests.helpers import NO_CREDENTIALS, NOT_FOUND, counter_url, redis_value


def test_it_deletes_the_counter_and_its_value(alice_client, alice):
    services.counter_create(owner_id=alice.id, name="old", value=5)
    r = alice_client.delete(counter_url("old"))
    assert r.status_code == 204
    assert r.content == b""
    assert not Counter.objects.filter(owner=alice, name="old").exists()
    assert redis_value(alice, "old") is None
    assert alice_client.get(counter_url("old")).status_code == 404
    assert alice_client.post(counter_url("old", "/next")).status_code == 404


def test_a_deleted_name_can_be_created_again_from_scratch(alice_client, alice):
    services.counter_create(owner_id=alice.id, name="again", value=500)
    alice_client.delete(counter_url("again/"))
    r = alice_client.post("/api/counters", {"name": "again"}, format="json")
    assert r.json()["value"] == 0
    assert Counter.objects.get(owner=alice, name="again").reserved_through == 3


def test_another_users_counter_is_a_404_and_stays(alice_client, bob):
    r = alice_client.delete(counter_url("default"))
    assert r.status_code == 204  # alice's own
    r = alice_client.delete(counter_url("default"))
    assert r.status_code == 404
    assert r.json() == NOT_FOUND
    assert Counter.objects.filter(owner=bob, name="default").exists()
    assert redis_value(bob, "default") == 0


def test_no_credentials_is_a_401(api_client, alice):
    r = api_client.delete(counter_url("default"))
    assert r.status_code == 401
    assert r.json() == NO_CREDENTIALS
    assert Counter.objects.filter(owner=alice).exists()


def test_a_redis_outage_rolls_the_delete_back(alice_client, alice, private_redis):
    services.counter_create(owner_id=alice.id, name="keep", value=3)
    private_redis.stop()
    r = alice_client.delete(counter_url("keep"))
    assert r.status_code == 503
    assert r.json()["code"] == "counter_store_unavailable"
    assert Counter.objects.filter(owner=alice, name="keep").exists()


def test_deleting_a_user_deletes_their_counters_values(alice, redis_conn):
    services.counter_create(owner_id=alice.id, name="more", value=3)
    pattern = key(alice.id, "*")
    assert len(redis_conn.keys(pattern)) == 2
    user_id = alice.id
    alice.delete()
    # what stays is the mark that refuses the deleted user's access tokens, until they expire
    assert redis_conn.keys(pattern) == [f"ctr:{{u{user_id}}}:~revoked".encode()]
    assert 0 < redis_conn.ttl(f"ctr:{{u{user_id}}}:~revoked") <= 5 * 60 + 60
