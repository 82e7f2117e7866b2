"""The project's URLs plus views that fail on purpose, for tests/test_errors.py."""

from django.urls import path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny

from incrementific.urls import handler404, handler500, urlpatterns  # noqa: F401


@api_view(["GET"])
@permission_classes([AllowAny])
def boom(request):
    raise RuntimeError("secret internals")


def plain_boom(request):
    raise RuntimeError("secret internals")


# The API's and the prototype's before the project's: those paths end in a catch-all 404.
urlpatterns = [
    path("api/boom", boom),
    path("v1/boom", boom),
    path("v1/plain-boom", plain_boom),
    *urlpatterns,
    path("boom", boom),
    path("plain-boom", plain_boom),
]
