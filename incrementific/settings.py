"""Settings for incrementific, read from the environment and safe by default.

Every variable is listed with its default in docs/configuration.md and .env.example.
"""

import logging
import os
import tomllib
from datetime import timedelta
from pathlib import Path

import dj_database_url
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.retry import Retry

from incrementific.env import SettingError, envaddresses, envbool, envchoice, envint, envlist, envorigins
from incrementific.logs import TEXT_FORMAT
from incrementific.surfaces import BEARER_PATHS

BASE_DIR = Path(__file__).resolve().parent.parent


DEBUG = envbool("DEBUG")
SECRET_KEY = os.environ.get("SECRET_KEY", "")
# Without either, say what to do rather than fail somewhere deep in Django.
_LOCAL = "`make run` and the other make targets make one under DATA_DIR; or set DEBUG=true for local work"
if not SECRET_KEY:
    if not DEBUG:
        raise SettingError(f"SECRET_KEY is required when DEBUG is off: {_LOCAL}")
    SECRET_KEY = "insecure-debug-only-key"

# Tokens get a key of their own, so that rotating SECRET_KEY (sessions, CSRF) and the token key
# are separate decisions. Required, like SECRET_KEY, when DEBUG is off; `make run` makes one.
JWT_SIGNING_KEY = os.environ.get("JWT_SIGNING_KEY", "")
if not JWT_SIGNING_KEY:
    if not DEBUG:
        raise SettingError(f"JWT_SIGNING_KEY is required when DEBUG is off: {_LOCAL}")
    JWT_SIGNING_KEY = "insecure-debug-only-jwt-key-of-some-length"

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")
DATA_DIR = Path(os.environ.get("DATA_DIR", BASE_DIR / "var"))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "accounts",
    "counters",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "incrementific.middleware.RequestBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# CORS for the surfaces that clients call with a bearer token (the prototype's /v1 and bare
# paths, /api), so that a front end on another origin can call them, as the prototype's did
# (API Gateway's `cors: true`). Never with credentials: no cookie crosses origins, so the web app,
# the admin and session-authenticated calls stay same-origin. Preflights are answered before
# authentication. Off unless CORS_ALLOWED_ORIGINS is set (`make run` sets it to *).
CORS_ALLOWED_ORIGINS = envorigins("CORS_ALLOWED_ORIGINS")
CORS_ALLOW_ALL_ORIGINS = CORS_ALLOWED_ORIGINS == ["*"]
if CORS_ALLOW_ALL_ORIGINS:
    CORS_ALLOWED_ORIGINS = []
CORS_URLS_REGEX = BEARER_PATHS
CORS_ALLOW_CREDENTIALS = False
# What a cross-origin script may read besides the simple headers: how long to wait after a 429.
CORS_EXPOSE_HEADERS = ["Retry-After"]
if CORS_ALLOWED_ORIGINS or CORS_ALLOW_ALL_ORIGINS:
    # First: it answers preflights itself, and puts its headers on every answer below it (a 413
    # from the body limit included), so that a script on another origin can read the error.
    MIDDLEWARE.insert(0, "incrementific.middleware.CorsMiddleware")

if DEBUG:
    # The API's errors stay JSON with DEBUG on (Django's debug page is for the pages).
    MIDDLEWARE.append("incrementific.middleware.JsonErrorsInDebugMiddleware")

ROOT_URLCONF = "incrementific.urls"
WSGI_APPLICATION = "incrementific.wsgi.application"
# Paths answer with and without a trailing slash through the URL patterns themselves, never by
# a redirect (a redirected POST loses its body).
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The web app's base layout and shared parts (each app keeps its own pages too).
        "DIRS": [BASE_DIR / "incrementific" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if not os.environ.get("DATABASE_URL"):
    DATA_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}",
        conn_max_age=envint("CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock when a transaction starts, so two gunicorn workers
    # reserving blocks at once queue up instead of failing with "database is locked".
    # WAL lets readers run beside that writer; synchronous stays FULL so a committed
    # reservation survives a power cut.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# GET /metrics answers loopback, and with this token (Authorization: Bearer) anyone.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "").strip()
# How often a process that set counters moves their history from Redis to SQL (counters/history.py);
# 0: only when the history is read.
HISTORY_MOVE_SECONDS = envint("HISTORY_MOVE_SECONDS", 5, minimum=0)
# How often each process hands its numbers over to the scrape (incrementific/metrics.py).
METRICS_FLUSH_SECONDS = envint("METRICS_FLUSH_SECONDS", 1, minimum=1)

REDIS_URL = os.environ.get("REDIS_URL", "").strip() or "redis://127.0.0.1:6379/0"
REDIS_TIMEOUT_SECONDS = envint("REDIS_TIMEOUT_SECONDS", 2, minimum=1)
# Redis Sentinel: the counters live on the primary that these Sentinels name for
# REDIS_SENTINEL_MASTER, and REDIS_URL gives only the database number and the data password.
# Empty: the single server at REDIS_URL. See incrementific/redis/connection.py, docs/redis-in-production.md.
REDIS_SENTINELS = envaddresses("REDIS_SENTINELS")
REDIS_SENTINEL_MASTER = os.environ.get("REDIS_SENTINEL_MASTER", "").strip() or "mymaster"
REDIS_SENTINEL_PASSWORD = os.environ.get("REDIS_SENTINEL_PASSWORD") or None
# Redis Cluster: seed nodes; the counters spread over its shards by the owner's hash tag, and
# REDIS_URL gives only the data user and password (a cluster has database 0 alone).
REDIS_CLUSTER_NODES = envaddresses("REDIS_CLUSTER_NODES")
if REDIS_CLUSTER_NODES and REDIS_SENTINELS:
    raise SettingError("REDIS_CLUSTER_NODES and REDIS_SENTINELS are both set: one topology at a time, unset one")
if REDIS_CLUSTER_NODES and parse_url(REDIS_URL).get("db", 0) != 0:
    raise SettingError(f"REDIS_URL names database {parse_url(REDIS_URL)['db']}: a Redis Cluster has database 0 only")
CACHES = {
    # The ordinary cache stays out of Redis for now: django-redis's cache.clear() runs FLUSHDB,
    # which must never be able to reach the counters.
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Counter state. IGNORE_EXCEPTIONS stays off: an outage must be a 503, never a silent zero.
    "counters": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": REDIS_TIMEOUT_SECONDS,
            "SOCKET_TIMEOUT": REDIS_TIMEOUT_SECONDS,
            # One immediate retry reconnects a connection that died with a Redis restart (the
            # store's own, incrementific/redis/connection.py, and the pool's). Re-running `next` after a timeout
            # can only skip a value, never repeat one.
            "CONNECTION_POOL_KWARGS": {"retry": Retry(NoBackoff(), 1)},
        },
    },
}

# django-redis's own default, written down: its close() looks this up at the end of every request,
# and a setting that is not there costs an exception each time (1% of a `next`, BENCHMARKS.md).
DJANGO_REDIS_CLOSE_CONNECTION = False

# Counters reserve values in SQL a block at a time; see counters/services.py.
COUNTER_BLOCK_SIZE = envint("COUNTER_BLOCK_SIZE", 1000, minimum=1)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Both without SQL on the steady path: API keys are looked up in Redis, and a JWT's
        # user id comes from the signed token. Keys first: the JWT class refuses what is not one.
        "accounts.authentication.ApiKeyAuthentication",
        # A provider's access token (OIDC_API_AUDIENCE): one Redis read for its subject's user id.
        "accounts.oidc.ProviderTokenAuthentication",
        "accounts.authentication.JWTAuthentication",
        "accounts.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "accounts.authentication.TokenNotRevoked",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "incrementific.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "incrementific.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "incrementific.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "incrementific.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "incrementific.negotiation.ContentNegotiation",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Proxies in front of the service whose X-Forwarded-For is trusted for client addresses.
    "NUM_PROXIES": envint("NUM_PROXIES", 0),
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=envint("JWT_ACCESS_MINUTES", 5)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=envint("JWT_REFRESH_DAYS", 1)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    # One algorithm, pinned: a token naming another (or "none") is refused.
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "ISSUER": os.environ.get("JWT_ISSUER", "incrementific"),
    "AUDIENCE": os.environ.get("JWT_AUDIENCE", "incrementific-api"),
    "UPDATE_LAST_LOGIN": False,
    # Tokens carry the user's revocation mark (accounts/tokens.py), so revoking is immediate.
    "TOKEN_OBTAIN_SERIALIZER": "accounts.tokens.TokenObtainSerializer",
}

# The project's version, said once (pyproject.toml), shown in the API documentation.
with open(BASE_DIR / "pyproject.toml", "rb") as pyproject:
    VERSION = tomllib.load(pyproject)["project"]["version"]

SPECTACULAR_SETTINGS = {
    "TITLE": "incrementific",
    "DESCRIPTION": (
        "Integers as a service: counters whose `next` never hands out a value twice. "
        "Authenticate with a JWT access token (`POST /api/auth/token`) or an API key "
        "(`POST /api/keys`), both as `Authorization: Bearer ...`.\n\n"
        "[Back to incrementific](/) · [The browsable API](/api/)"
    ),
    "VERSION": VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the drf-spectacular-sidecar package: the docs work without a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # A PATCH takes what its PUT takes: a counter's one field, `value`, is required in both.
    "COMPONENT_SPLIT_PATCH": False,
    "PREPROCESSING_HOOKS": ["incrementific.schema.canonical_paths"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "incrementific.schema.strings_without_nul",
        "incrementific.schema.shortest_password",
        "incrementific.schema.forms_without_null",
        "incrementific.schema.request_line_limit",
    ],
    "ENUM_GENERATE_CHOICE_DESCRIPTION": False,
    "ENUM_NAME_OVERRIDES": {"HealthStateEnum": "incrementific.views.HEALTH_STATES"},
}

# Abuse limits ("N/second", "N/minute", "N/hour" or "N/day"; empty turns one off), counted in
# Redis so that every worker shares them (accounts/ratelimit.py). Over a limit: 429 + Retry-After.
RATE_LIMITS = {
    "register": os.environ.get("THROTTLE_REGISTER", "20/hour"),  # new accounts, per client address
    "login": os.environ.get("THROTTLE_LOGIN", "60/minute"),  # token, refresh, /v1/register, per address
    "login_failures": os.environ.get("THROTTLE_LOGIN_FAILURES", "10/hour"),  # wrong passwords, per username
}
# Requests a user may make to the counter endpoints (next, set, read, list), counted inside the
# counter's own Redis call. Off by default: counting people is what the service is for.
COUNTER_RATE_LIMIT = os.environ.get("COUNTER_RATE_LIMIT", "")
# How long an Idempotency-Key's answer is kept (incrementific/idempotency.py), then forgotten.
IDEMPOTENCY_KEY_SECONDS = envint("IDEMPOTENCY_KEY_SECONDS", 86400, minimum=1)
# A cap on counters per user; one more is a 403.
MAX_COUNTERS_PER_USER = envint("MAX_COUNTERS_PER_USER", 1000)

# Request bodies above this are refused with a JSON 413 before any parser reads them.
MAX_REQUEST_BODY_BYTES = envint("MAX_REQUEST_BODY_BYTES", 64 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "incrementific" / "static"]
STATIC_ROOT = DATA_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Read whatever DEBUG is, so that a typo fails at start either way; applied only without DEBUG.
_secure_cookies = envbool("SECURE_COOKIES", True)
_ssl_redirect = envbool("SECURE_SSL_REDIRECT")
_hsts_seconds = envint("SECURE_HSTS_SECONDS", 0, minimum=0)
# Both commit every subdomain (and, preloaded, every browser) to https: a choice to make.
_hsts_subdomains = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS")
_hsts_preload = envbool("SECURE_HSTS_PRELOAD")
if not DEBUG:
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _secure_cookies
    SECURE_SSL_REDIRECT = _ssl_redirect
    SECURE_HSTS_SECONDS = _hsts_seconds
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _hsts_subdomains
    SECURE_HSTS_PRELOAD = _hsts_preload
    if os.environ.get("SECURE_PROXY_SSL_HEADER"):
        SECURE_PROXY_SSL_HEADER = (os.environ["SECURE_PROXY_SSL_HEADER"], "https")

# Text a person reads, or one JSON object a line (LOG_FORMAT=json) for a log shipper; either way
# with the request's id (incrementific/logs.py). gunicorn.conf.py writes gunicorn's own the same way.
LOG_FORMAT = envchoice("LOG_FORMAT", "text", ("text", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "incrementific.logs.RequestIdFilter"}},
    "formatters": {
        "text": {"format": TEXT_FORMAT},
        "json": {"()": "incrementific.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}
# Python's warnings are log lines too (the py.warnings logger), JSON ones with LOG_FORMAT=json.
logging.captureWarnings(True)
CSRF_FAILURE_VIEW = "incrementific.views.csrf_failure"
# The web app's pages (accounts/web.py); the admin and the browsable API have their own.
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:login"

# Single sign-on with an OpenID Connect provider (accounts/oidc.py, docs/single-sign-on.md); all
# off unless set. The provider's /.well-known/openid-configuration tells the endpoints and keys.
OIDC_ISSUER = os.environ.get("OIDC_ISSUER", "").strip()
OIDC_CLIENT_ID = os.environ.get("OIDC_CLIENT_ID", "").strip()
OIDC_CLIENT_SECRET = os.environ.get("OIDC_CLIENT_SECRET", "").strip()
OIDC_PROVIDER_NAME = os.environ.get("OIDC_PROVIDER_NAME", "").strip() or "single sign-on"
OIDC_SCOPES = os.environ.get("OIDC_SCOPES", "").strip() or "openid email profile"
# The counter and account endpoints also take the provider's access tokens (JWTs) for this audience.
OIDC_API_AUDIENCE = os.environ.get("OIDC_API_AUDIENCE", "").strip()
# The provider's keys are fetched again for an unknown `kid` at most this often.
OIDC_JWKS_REFRESH_SECONDS = envint("OIDC_JWKS_REFRESH_SECONDS", 60, minimum=1)
for _name, _value in (("OIDC_CLIENT_ID", OIDC_CLIENT_ID), ("OIDC_API_AUDIENCE", OIDC_API_AUDIENCE)):
    if _value and not OIDC_ISSUER:
        raise SettingError(f"{_name} is set but OIDC_ISSUER is not: set the provider's issuer URL")
if OIDC_ISSUER and not OIDC_ISSUER.startswith(("https://", "http://")):
    raise SettingError(f"OIDC_ISSUER={OIDC_ISSUER!r} is not a URL: write the provider's issuer, https://...")
if OIDC_CLIENT_ID and not OIDC_CLIENT_SECRET:
    raise SettingError("OIDC_CLIENT_ID is set but OIDC_CLIENT_SECRET is not: the log-in needs both")
# mozilla-django-oidc's own settings (its client id, secret and scopes are ours, its endpoints
# the discovery document's: accounts/oidc.py).
OIDC_USE_PKCE = True
OIDC_PKCE_CODE_CHALLENGE_METHOD = "S256"
OIDC_TIMEOUT = 5
OIDC_AUTHENTICATION_CALLBACK_URL = "oidc_authentication_callback"
# Passwords first; the provider's back end answers only its own callback (a code and a state).
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend", "accounts.oidc.ProviderBackend"]
