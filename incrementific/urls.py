from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from accounts import oidc
from accounts import web as account_pages
from accounts.urls import route
from accounts.views import ApiKeyViewSet
from counters import v1
from counters import web as counter_pages
from counters.views import CounterViewSet
from incrementific import schema, surfaces, views  # noqa: F401  (importing schema registers its OpenAPI extensions)
from incrementific.browsable import ApiRootView
from incrementific.names import NAME_PATTERN


class Router(DefaultRouter):
    """Every path answers with and without its trailing slash, never by a redirect; and no
    format suffixes, which would read a counter named "a.json" as "a" in JSON.

    Its routes carry their ``api/`` themselves instead of sitting in an ``include("api/")``: a
    nested resolver costs every API request a second pass and a second ResolverMatch."""

    include_format_suffixes = False
    mount = "api/"
    APIRootView = ApiRootView

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"

    def get_urls(self):
        mounted = []
        for url in super().get_urls():
            regex = url.pattern.regex.pattern.removeprefix("^")
            mounted.append(re_path(f"^{self.mount}{regex}", url.callback, url.default_args, url.name))
        return mounted


# The web app for people in a browser (sessions, forms): accounts/web.py and counters/web.py.
web_urlpatterns = [
    path("", counter_pages.home, name="home"),
    route("signup", account_pages.signup, "signup"),
    route("login", account_pages.login_page, "login"),
    route("logout", account_pages.logout_page, "logout"),
    route("account", account_pages.account, "account"),
    route("keys", account_pages.keys, "keys"),
    route("account/link", account_pages.link_provider, "link-provider"),
    route("keys/(?P<key_id>[0-9]{1,18})/revoke", account_pages.key_revoke, "key-revoke"),
    route("counters", counter_pages.create, "counter-create"),
    route(rf"counters/(?P<name>{NAME_PATTERN})/next", counter_pages.take_next, "counter-next"),
    route(rf"counters/(?P<name>{NAME_PATTERN})/set", counter_pages.set_value, "counter-set"),
    route(rf"counters/(?P<name>{NAME_PATTERN})/delete", counter_pages.delete, "counter-delete"),
    route(rf"counters/(?P<name>{NAME_PATTERN})/log", counter_pages.log, "counter-log"),
    route(rf"counters/(?P<name>{NAME_PATTERN})/log/(?P<value>[0-9]{{1,19}})/void", counter_pages.void, "counter-void"),
]

router = Router()
router.register("counters", CounterViewSet, basename="counter")
router.register("keys", ApiKeyViewSet, basename="apikey")

urlpatterns = [
    # The counter routes first: Django tries patterns in order, and `next` is the hot path.
    *router.urls,
    path("api/auth/", include("accounts.urls")),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^api/docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("admin/", admin.site.urls),
    # Single sign-on (accounts/oidc.py): mozilla-django-oidc's paths and names.
    path("oidc/authenticate/", oidc.authenticate_view, name="oidc_authentication_init"),
    path("oidc/callback/", oidc.callback_view, name="oidc_authentication_callback"),
    path("api-auth/", include("rest_framework.urls")),
    re_path(r"^healthz/?$", views.HealthView.as_view(), name="healthz"),
    re_path(r"^livez/?$", views.LivezView.as_view(), name="livez"),
    re_path(r"^readyz/?$", views.ReadyzView.as_view(), name="readyz"),
    re_path(r"^metrics/?$", views.metrics_view, name="metrics"),
    # Browsers ask for /favicon.ico on any page that names no icon (the JSON ones, say).
    path("favicon.ico", views.FaviconView.as_view()),
    # The prototype's paths, with and without /v1 (counters/v1.py).
    re_path(r"^(?:v1/)?register/?$", v1.V1RegisterView.as_view(), name="v1-register"),
    re_path(r"^(?:v1/)?next/?$", v1.V1NextView.as_view(), name="v1-next"),
    re_path(r"^(?:v1/)?current/?$", v1.V1CurrentView.as_view(), name="v1-current"),
    re_path(r"^(?:v1/)?set/?$", v1.V1SetView.as_view(), name="v1-set"),
    # Anything else under those paths: their JSON 404, with DEBUG on as well.
    re_path(rf"^(?:{surfaces.PROTOTYPE_ROUTES}|{surfaces.API_ROUTES})", views.api_not_found),
    path("", include((web_urlpatterns, "web"))),
]

handler400 = "incrementific.views.bad_request"
handler403 = "incrementific.views.permission_denied"
handler404 = "incrementific.views.not_found"
handler500 = "incrementific.views.server_error"
