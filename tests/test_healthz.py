def test_it_is_ok_when_everything_answers(client, db):
    for path in ["/healthz", "/healthz/"]:
        r = client.get(path)
        assert r.status_code == 200
        assert r.json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_it_is_a_503_when_redis_is_down_and_ok_again_when_it_is_back(client, db, private_redis):
    private_redis.stop()
    r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json() == {"status": "unavailable", "database": "ok", "redis": "unavailable"}
    private_redis.start()
    assert client.get("/healthz").status_code == 200
