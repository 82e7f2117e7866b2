"""Single sign-on with an OpenID Connect provider (docs/single-sign-on.md): people log in with
it, and services call the API with its access tokens.

The libraries, chosen to write no OAuth or JOSE code here:

* mozilla-django-oidc runs the people's flow: the authorization code flow with PKCE, ``state``
  and ``nonce`` kept in the session and checked, the code exchanged at the token endpoint, at
  the paths /oidc/authenticate/ and /oidc/callback/ that its urls.py gives. Its endpoints come
  from the provider's discovery document (:func:`configuration`), not from settings.
* PyJWT (simplejwt's own dependency) checks every signature: the ID token of that flow (which
  mozilla-django-oidc would check for its signature and nonce only: we check ``iss``, ``aud``,
  ``exp`` too) and the access tokens on the API, with the provider's keys (:class:`Keys`).
  django-allauth would bring a whole account system beside ours; Authlib's Django client has no
  views of its own; simplejwt's JWKS support would replace its checking of our own tokens.

An account is found by the provider's issuer and the subject's ``sub``
(accounts.models.ProviderIdentity), never by e-mail alone. Redis remembers which user a subject
is, so a provider's token on the steady `next` costs one Redis read before the counter's own
call, and no SQL.
"""

import logging
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

import jwt
import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from django.shortcuts import render
from django.urls import reverse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView
from rest_framework import authentication
from rest_framework_simplejwt.exceptions import InvalidToken

from accounts import services, store
from accounts.caller import Caller

logger = logging.getLogger(__name__)

# Asymmetric only: never `none`, never an HS* "signed" with the provider's public key.
ALGORITHMS = ["RS256", "ES256", "PS256"]
DISCOVERY_SECONDS = 3600
# How long the provider's key set is trusted without asking again (Keys).
JWKS_SECONDS = 3600
# How far the provider's clock and ours may disagree about `exp` and `nbf`.
LEEWAY_SECONDS = 5
TIMEOUT_SECONDS = 5
# What the session keeps between "link my login" on the account page and the provider's answer.
LINK_SESSION_KEY = "oidc_link_user"


class ProviderUnavailable(Exception):
    """The provider did not answer, or answered with something that is not its configuration."""


class _Discovery:
    def __init__(self):
        self.lock = threading.Lock()
        self.document: dict | None = None
        self.fetched_at = 0.0
        self.issuer = ""

    def get(self) -> dict:
        issuer = settings.OIDC_ISSUER
        now = time.monotonic()
        if self.document is not None and self.issuer == issuer and now - self.fetched_at < DISCOVERY_SECONDS:
            return self.document
        with self.lock:
            url = issuer.rstrip("/") + "/.well-known/openid-configuration"
            try:
                response = requests.get(url, timeout=TIMEOUT_SECONDS)
                response.raise_for_status()
                document = response.json()
            except (requests.RequestException, ValueError) as exc:
                if self.document is not None and self.issuer == issuer:
                    return self.document  # an hour old is better than none
                raise ProviderUnavailable(f"{url}: {exc}") from exc
            if not isinstance(document, dict) or document.get("issuer") != issuer:
                raise ProviderUnavailable(f"{url} names another issuer: {document.get('issuer')!r}")
            self.document, self.fetched_at, self.issuer = document, now, issuer
            return document


_discovery = _Discovery()


def configuration() -> dict:
    """The provider's discovery document, fetched once an hour. Raises ProviderUnavailable."""
    return _discovery.get()


class Keys:
    """The provider's signing keys, through PyJWT's own ``PyJWKClient`` (one per JWKS address,
    which comes from the discovery document): the set is kept JWKS_SECONDS, and fetched again
    for a token that names an unknown ``kid`` at most every OIDC_JWKS_REFRESH_SECONDS (its
    cooldown), so a rotation is picked up at once and tokens with made-up ``kid``\\s cannot
    make us hammer the provider. A key the provider stopped listing is trusted no longer than
    JWKS_SECONDS; so is a set the provider could not be asked for again (then its tokens are
    refused until it answers)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.clients: dict[tuple[str, int], jwt.PyJWKClient] = {}

    def _client(self, uri: str) -> jwt.PyJWKClient:
        cooldown = settings.OIDC_JWKS_REFRESH_SECONDS
        client = self.clients.get((uri, cooldown))
        if client is None:
            with self.lock:
                client = self.clients.setdefault(
                    (uri, cooldown),
                    jwt.PyJWKClient(uri, lifespan=JWKS_SECONDS, cooldown_duration=cooldown, timeout=TIMEOUT_SECONDS),
                )
        return client

    def get(self, kid: str) -> jwt.PyJWK | None:
        try:
            return self._client(configuration()["jwks_uri"]).get_signing_key(kid)
        except jwt.PyJWKClientConnectionError as exc:
            logger.warning("the provider's keys could not be fetched: %s", exc)
        except (jwt.PyJWKClientError, jwt.PyJWKError, KeyError, ProviderUnavailable) as exc:
            logger.info("no key of the provider's for kid %r: %s", kid, exc)
        return None


keys = Keys()


class TokenRefused(Exception):
    pass


def verify(token: str, audience: str) -> dict:
    """The claims of a JWT the provider signed for ``audience``: signature (an allowed
    algorithm, a key of the provider's), ``iss``, ``aud``, ``exp`` and ``nbf``. Raises TokenRefused."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise TokenRefused(str(exc)) from None
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise TokenRefused(f"algorithm {algorithm!r} is not allowed")
    key = keys.get(str(header.get("kid", "")))
    if key is None:
        raise TokenRefused("signed with a key the provider does not list")
    try:
        return jwt.decode(
            token,
            key.key,
            algorithms=[algorithm],
            audience=audience,
            issuer=settings.OIDC_ISSUER,
            options={"require": ["exp", "iss", "aud", "sub"]},
            leeway=LEEWAY_SECONDS,
        )
    except jwt.InvalidTokenError as exc:
        raise TokenRefused(str(exc)) from None


# People: the log-in flow.


class ProviderBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's back end, its endpoints from the discovery document, the ID token
    checked by :func:`verify`, and accounts found by issuer and subject. Django makes one for each
    authenticate() and each request of a session it logged in: nothing is fetched until a callback."""

    def __init__(self, *args, **kwargs):
        self.UserModel = get_user_model()

    def authenticate(self, request, **kwargs):
        if request is None or not settings.OIDC_CLIENT_ID or "code" not in request.GET:
            return None  # a password log-in, or single sign-on is off
        document = configuration()
        self.OIDC_OP_TOKEN_ENDPOINT = document["token_endpoint"]
        self.OIDC_OP_USER_ENDPOINT = document.get("userinfo_endpoint")
        self.OIDC_OP_JWKS_ENDPOINT = document["jwks_uri"]
        self.OIDC_RP_CLIENT_ID = settings.OIDC_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = "RS256"  # unused: verify_token() below checks the token
        self.OIDC_RP_IDP_SIGN_KEY = None
        return super().authenticate(request, **kwargs)

    def verify_token(self, token, **kwargs):
        try:
            claims = verify(token.decode() if isinstance(token, bytes) else token, settings.OIDC_CLIENT_ID)
        except TokenRefused as exc:
            raise SuspiciousOperation(f"the provider's ID token: {exc}") from None
        if claims.get("nonce") != kwargs.get("nonce"):
            raise SuspiciousOperation("the provider's ID token: its nonce is not the one this browser sent")
        return claims

    def get_or_create_user(self, access_token, id_token, payload):
        claims = dict(payload)
        if self.OIDC_OP_USER_ENDPOINT and access_token:
            try:
                info = self.get_userinfo(access_token, id_token, payload)
            except requests.RequestException as exc:
                logger.warning("the provider's userinfo: %s", exc)
            else:
                if info.get("sub") == payload["sub"]:  # OpenID Connect Core 5.3.2
                    claims = {**info, **payload}
        issuer, subject = settings.OIDC_ISSUER, payload["sub"]
        linking = self.request.session.get(LINK_SESSION_KEY)
        if linking is not None and self.request.user.is_authenticated and self.request.user.id == linking:
            del self.request.session[LINK_SESSION_KEY]
            try:
                services.provider_identity_link(user=self.request.user, issuer=issuer, subject=subject)
            except services.IdentityTaken:
                raise LoginProblem(f"That {settings.OIDC_PROVIDER_NAME} login is linked to another account.") from None
            return self.request.user
        return services.user_for_provider_subject(issuer=issuer, subject=subject, claims=claims)


class LoginProblem(Exception):
    """What a person is told when a log-in with the provider did not work; no account was made."""


class _Authenticate(OIDCAuthenticationRequestView):
    get_settings = staticmethod(lambda attr, *args: _setting(attr, *args))


class _Callback(OIDCAuthenticationCallbackView):
    get_settings = staticmethod(lambda attr, *args: _setting(attr, *args))

    def login_failure(self):
        error = self.request.GET.get("error")
        if error:
            description = self.request.GET.get("error_description") or error
            raise LoginProblem(f"{settings.OIDC_PROVIDER_NAME} refused the log-in: {description}.")
        raise LoginProblem(f"{settings.OIDC_PROVIDER_NAME} did not log you in.")

    def login_success(self):
        response = super().login_success()
        messages.success(self.request, f"Welcome, {self.user.username}.")
        return response


# mozilla-django-oidc's names for our settings (read on each use: tests change them).
_OURS = {
    "OIDC_RP_CLIENT_ID": "OIDC_CLIENT_ID",
    "OIDC_RP_CLIENT_SECRET": "OIDC_CLIENT_SECRET",
    "OIDC_RP_SCOPES": "OIDC_SCOPES",
}


def _setting(attr: str, *args):
    if attr == "OIDC_OP_AUTHORIZATION_ENDPOINT":
        return configuration()["authorization_endpoint"]
    if attr in _OURS:
        return getattr(settings, _OURS[attr])
    if attr == "LOGIN_REDIRECT_URL":
        return reverse("web:home")
    return import_from_settings(attr, *args)


def _problem(request, message: str, status: int):
    return render(
        request,
        "web/login_problem.html",
        {"message": message, "provider": settings.OIDC_PROVIDER_NAME},
        status=status,
    )


def authenticate_view(request):
    """/oidc/authenticate/: off to the provider (from the account page's "Link", to link its
    login to the account logged in: accounts/web.py link_provider)."""
    if not settings.OIDC_CLIENT_ID:
        return _problem(request, "Single sign-on is not set up here.", 404)
    try:
        return _Authenticate.as_view()(request)
    except ProviderUnavailable as exc:
        logger.error("single sign-on: %s", exc)
        return _problem(request, f"{settings.OIDC_PROVIDER_NAME} cannot be reached right now. Try again later.", 503)


def callback_view(request):
    """/oidc/callback/: where the provider sends the browser back. Every failure is a page that
    says what happened, and makes no account."""
    if not settings.OIDC_CLIENT_ID:
        return _problem(request, "Single sign-on is not set up here.", 404)
    try:
        return _Callback.as_view()(request)
    except LoginProblem as exc:
        return _problem(request, str(exc), 400)
    except SuspiciousOperation as exc:
        logger.warning("single sign-on refused: %s", exc)
        message = "This log-in link is not valid here (it was used, or started in another browser)."
        if "state" not in str(exc):
            message = f"The answer from {settings.OIDC_PROVIDER_NAME} did not check out."
        return _problem(request, message, 400)
    except requests.HTTPError as exc:
        logger.warning("single sign-on: the token endpoint said %s", exc)
        return _problem(
            request, f"{settings.OIDC_PROVIDER_NAME} did not accept the log-in (it expired, or was used).", 400
        )
    except (requests.RequestException, ProviderUnavailable) as exc:
        logger.error("single sign-on: %s", exc)
        return _problem(request, f"{settings.OIDC_PROVIDER_NAME} cannot be reached right now. Try again later.", 503)


# Services: the provider's access tokens on the API.


@dataclass(frozen=True)
class ProviderUser:
    """The user a provider's token names, by id alone (as simplejwt's TokenUser): no SQL."""

    id: int
    is_authenticated = True
    is_active = True
    is_anonymous = False
    is_staff = False

    @property
    def pk(self) -> int:
        return self.id

    def __str__(self) -> str:
        return f"user {self.id} (provider token)"


@dataclass(frozen=True)
class ProviderToken:
    """A provider's access token (Caller.token): its claims."""

    claims: dict

    @property
    def rev(self) -> int:
        # Checked against the user's revocation mark as our own tokens are: one issued before a
        # password change, a deactivation or a deletion is refused.
        return int(self.claims.get("iat", 0)) * 1000


@lru_cache(maxsize=4096)
def _verified(token: str, audience: str, issuer: str) -> dict:
    """verify(), once per token per worker (a token's bytes never change); a refusal is not kept."""
    try:
        algorithm = jwt.get_unverified_header(token).get("alg", "")
    except jwt.InvalidTokenError:
        raise NotOurs() from None  # not a JWT: ours refuses it in its own words
    if algorithm.startswith("HS"):
        raise NotOurs()  # one of ours, or signed with a shared secret: never the provider's
    return verify(token, audience)


class NotOurs(Exception):
    """Not a provider's token: left to the next authentication class."""


# How simplejwt's HS256 tokens (ours) begin: {"alg":"HS256","typ":"JWT"}, in base64url.
OUR_TOKENS_START = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."


def _refused() -> InvalidToken:
    return InvalidToken({"detail": "Given token not valid for any token type", "code": "token_not_valid"})


class ProviderTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <a JWT the provider signed>`` whose ``aud`` holds
    OIDC_API_AUDIENCE. Our own tokens (HS256) and API keys are left to their classes."""

    def authenticate(self, request):
        audience = settings.OIDC_API_AUDIENCE
        if not audience:
            return None
        parts = request.META.get("HTTP_AUTHORIZATION", "").split()
        if len(parts) != 2 or parts[0].lower() != "bearer" or parts[1].startswith(services.KEY_PREFIX):
            return None
        token = parts[1]
        if token.startswith(OUR_TOKENS_START):
            return None  # one of ours, at the cost of one comparison
        try:
            claims = _verified(token, audience, settings.OIDC_ISSUER)
        except NotOurs:
            return None
        except TokenRefused as exc:
            logger.info("a provider token refused: %s", exc)
            raise _refused() from None
        if claims["exp"] <= time.time():
            raise _refused()  # expired since it was checked
        issuer, subject = settings.OIDC_ISSUER, str(claims["sub"])
        user_id = store.identity_lookup(issuer, subject)
        if user_id is None:
            user = services.user_for_provider_subject(issuer=issuer, subject=subject, claims=claims)
            if not user.is_active:
                raise _refused()
            user_id = user.id
            store.identity_remember(issuer, subject, user_id)
        token = ProviderToken(claims)
        return ProviderUser(user_id), Caller(user_id, store.TokenRev(token.rev), token=token)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
