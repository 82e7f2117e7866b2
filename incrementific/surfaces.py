"""Which surface a path belongs to, for the answers that differ by surface (the shape of an error,
CORS): the prototype's (`/v1/...` and its bare paths), the API (`/api/...`), or the pages.

    >>> [surface(p) for p in ("/v1/next", "/next", "/set/", "/settings", "/api/counters", "/apiary", "/")]
    ['v1', 'v1', 'v1', 'web', 'api', 'web', 'web']
"""

import re

V1 = "v1"
API = "api"
WEB = "web"

# As the URLconf sees paths (without their leading slash). The prototype's are /v1/... and
# /next, /current, /set and /register, each also under /v1 (incrementific/urls.py).
PROTOTYPE_ROUTES = r"(?:v1|next|current|set|register)(?:/|$)"
API_ROUTES = r"api(?:/|$)"
# Every path that clients call with a bearer token, as a regex on the whole path (CORS).
BEARER_PATHS = rf"^/(?:{PROTOTYPE_ROUTES}|{API_ROUTES})"

_prototype = re.compile(f"/{PROTOTYPE_ROUTES}")
_api = re.compile(f"/{API_ROUTES}")


def surface(path: str) -> str:
    if _api.match(path):
        return API
    if _prototype.match(path):
        return V1
    return WEB
