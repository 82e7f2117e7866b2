"""Which surface a path belongs to, for the answers that differ by surface (the shape of an error,
CORS): the prototype's (`/v1/...` and its bare paths), the API (`/api/...`), or the pages.

    >>> [surface(p) for p in ("/v1/next", "/next", "/set/", "/settings", "/api/counters", "/apiary", "/")]
    ['v1', 'v1', 'v1', 'web', 'api', 'web', 'web']
"""

import re

V1 = "v1"
API = "api"
WEB = "web"

# The prototype's bare paths, each also under /v1/ (incrementific/urls.py routes them). Named
# here once: the URLconf's catch-all, the error shapes, CORS and wsgi.py's bearer fast path.
PROTOTYPE_PATHS = ("next", "current", "set", "register")

# As the URLconf sees paths (without their leading slash).
PROTOTYPE_ROUTES = rf"(?:v1|{'|'.join(PROTOTYPE_PATHS)})(?:/|$)"
API_ROUTES = r"api(?:/|$)"
# Every path that clients call with a bearer token, as a regex on the whole path (CORS).
BEARER_PATHS = rf"^/(?:{PROTOTYPE_ROUTES}|{API_ROUTES})"

_prototype = re.compile(f"/{PROTOTYPE_ROUTES}")
_api = re.compile(f"/{API_ROUTES}")


# Where the API answers, the prototype's paths included, as prefixes for str.startswith() (cheaper
# than the regexes): bearer requests here skip the cookie middleware (wsgi.py). A path it takes
# in that is no API path ("/settings") finds no route there and is answered by the pages'
# URLconf all the same.
API_PATH_PREFIXES = ("/api/", "/v1/", *(f"/{name}" for name in PROTOTYPE_PATHS))


def surface(path: str) -> str:
    if _api.match(path):
        return API
    if _prototype.match(path):
        return V1
    return WEB
