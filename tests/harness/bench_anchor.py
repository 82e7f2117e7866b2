"""The benchmark's anchor: the floor a Python web stack stands on. One Redis INCR, one JSON
body, run under the same gunicorn settings and the same Redis as the service."""

import json
import os

import redis

client = redis.Redis.from_url(os.environ["REDIS_URL"])


def application(environ, start_response):
    body = json.dumps({"value": client.incr("bench:anchor")}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
