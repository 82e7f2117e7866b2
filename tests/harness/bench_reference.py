"""The performance issue's two reference points, served beside the app in `make bench`.

A plain DRF view that does one Redis INCR and answers `{"value": n}`, once with no
authentication and once behind simplejwt's own `JWTAuthentication` (which loads the user with a
SQL query per request). DRF's defaults everywhere else (negotiation, renderers, parsers), Django's
middleware as the project lists it, the project's settings and database, the same gunicorn
settings and the same Redis as the app and the anchor. The issue's aim is for `next` with a JWT
to beat the first while authenticated; measured in the same rounds, the comparison holds on a
machine at any speed, where the anchor ratio's target was set on one machine state.
"""

import os

import django
import redis

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incrementific.settings")
django.setup(set_prefix=False)

from django.conf import settings  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.urls import path  # noqa: E402
from rest_framework.negotiation import DefaultContentNegotiation  # noqa: E402
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser  # noqa: E402
from rest_framework.permissions import IsAuthenticated  # noqa: E402
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402
from rest_framework_simplejwt.authentication import JWTAuthentication  # noqa: E402

_clients = {}


def client() -> redis.Redis:
    # Like the anchor's, one plain redis-py client per process, for the counters' Redis (a
    # test's settings may point that elsewhere).
    location = settings.CACHES["counters"]["LOCATION"]
    if location not in _clients:
        _clients[location] = redis.Redis.from_url(location)
    return _clients[location]


class PlainIncr(APIView):
    # DRF's defaults, spelled out where the project's settings choose otherwise.
    authentication_classes = []
    permission_classes = []
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer]
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    content_negotiation_class = DefaultContentNegotiation

    def post(self, request):
        return Response({"value": client().incr("bench:reference")})


class JwtIncr(PlainIncr):
    authentication_classes = [JWTAuthentication]
    permission_classes = [IsAuthenticated]


urlpatterns = [path("plain", PlainIncr.as_view()), path("jwt", JwtIncr.as_view())]


class Handler(WSGIHandler):
    """Django's handler with this module as the URLconf of every request it serves."""

    def get_response(self, request):
        request.urlconf = __name__
        return super().get_response(request)


application = Handler()
