"""The web app's account pages: sign up, log in and out, change the password, API keys.

Sessions, not tokens: a browser keeps Django's session cookie (HttpOnly, CSRF-checked). The
rules are the API's: the same serializers, services and rate limits (see incrementific/web.py).
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login, logout, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods
from rest_framework_simplejwt.serializers import TokenObtainSerializer

from accounts import ratelimit
from accounts.models import ApiKey
from accounts.oidc import LINK_SESSION_KEY
from accounts.scopes import ACTIONS
from accounts.serializers import USERNAME_TAKEN, ApiKeySerializer, PasswordChangeSerializer, RegisterSerializer
from accounts.services import (
    ApiKeyNotFound,
    UsernameTaken,
    api_key_create,
    api_key_revoke,
    user_change_password,
    user_register,
)
from accounts.throttling import AddressThrottle
from accounts.views import login_username
from incrementific.web import page, validated

# The token endpoint's own words for a wrong username or password.
WRONG_CREDENTIALS = str(TokenObtainSerializer.default_error_messages["no_active_account"])


def _sso() -> str | None:
    """The provider's name for the "Log in with ..." buttons, or None when single sign-on is off."""
    return settings.OIDC_PROVIDER_NAME if settings.OIDC_CLIENT_ID else None


def _address(request) -> str:
    return AddressThrottle().get_ident(request)


def _next_page(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse("web:home")


@page
@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("web:home")
    values, errors = {}, {}
    if request.method == "POST":
        values = {"username": request.POST.get("username", ""), "email": request.POST.get("email", "")}
        ratelimit.take("register", _address(request))
        data, errors = validated(RegisterSerializer, request.POST)
        if data is not None:
            try:
                user = user_register(**data)
            except UsernameTaken:
                errors = {"username": [USERNAME_TAKEN]}
            else:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                messages.success(request, f"Welcome, {user.username}. Your counter “default” is ready at 0.")
                return redirect("web:home")
    status = 400 if errors else 200
    context = {"values": values, "errors": errors, "sso": _sso()}
    return render(request, "web/signup.html", context, status=status)


@page
@require_http_methods(["GET", "POST"])
def login_page(request):
    if request.method == "GET" and request.user.is_authenticated:
        return redirect(_next_page(request))
    values, errors = {}, {}
    if request.method == "POST":
        username = request.POST.get("username", "")
        values = {"username": username}
        # The token endpoint's limits: attempts per address, wrong passwords per username.
        ratelimit.take("login", _address(request))
        ratelimit.check("login_failures", login_username(request.POST))
        user = authenticate(request, username=username, password=request.POST.get("password", ""))
        if user is not None:
            login(request, user)
            return redirect(_next_page(request))
        ratelimit.count("login_failures", login_username(request.POST))
        errors = {"non_field_errors": [WRONG_CREDENTIALS]}
    context = {"values": values, "errors": errors, "next": _next_page(request), "sso": _sso()}
    return render(request, "web/login.html", context, status=401 if errors else 200)


@page
@require_http_methods(["GET", "POST"])
def logout_page(request):
    # A GET (a bookmark, an address typed in) asks first: logging out is a POST, CSRF-checked,
    # so that no link on another site can log anyone out.
    if request.method == "GET":
        if not request.user.is_authenticated:
            return redirect("web:login")
        context = {
            "title": "Log out",
            "question": "Log out?",
            "action": reverse("web:logout"),
            "confirm": "Log out",
            "confirm_class": "primary",
            "cancel": reverse("web:home"),
        }
        return render(request, "web/logout.html", context)
    logout(request)
    messages.info(request, "You are logged out.")
    return redirect("web:login")


@page
@login_required
@require_http_methods(["GET", "POST"])
def account(request):
    errors = {}
    if request.method == "POST":
        ratelimit.take("login", _address(request))
        data, errors = validated(PasswordChangeSerializer, request.POST, context={"user": request.user})
        if data is not None:
            user_change_password(user=request.user, new_password=data["new_password"])
            update_session_auth_hash(request, request.user)  # this browser stays logged in
            messages.success(request, "Password changed. Tokens issued before now are refused; API keys still work.")
            return redirect("web:account")
    context = {
        "errors": errors,
        "sso": _sso(),
        "identities": request.user.provider_identities.filter(issuer=settings.OIDC_ISSUER).count(),
    }
    return render(request, "web/account.html", context, status=400 if errors else 200)


@page
@login_required
@require_http_methods(["POST"])
def link_provider(request):
    """The account's owner asks to link their provider's login (a POST, CSRF-checked: no link
    on another site can make an account someone else's)."""
    if not _sso():
        return redirect("web:account")
    request.session[LINK_SESSION_KEY] = request.user.id
    return redirect("oidc_authentication_init")


def _key_form(post) -> tuple[dict, dict]:
    """The key form as the API's body (what the API would be sent for the same choices), and
    what to show again in the form."""
    data: dict = {"name": post.get("name", "")}
    values = {
        "name": data["name"],
        "scope": post.get("scope", "all"),
        "counters": post.getlist("counters"),
        "actions": post.getlist("actions"),
        "expires_at": post.get("expires_at", ""),
    }
    if "scope" not in post:
        values["actions"] = list(ACTIONS)  # a post without the scope part (a script): no limit
    if values["scope"] == "some":
        data["counters"] = values["counters"]
    # No box ticked sends nothing, so only the form's own scope part can say "none of these".
    if "scope" in post and set(values["actions"]) != set(ACTIONS):  # all five ticked: no limit
        data["actions"] = values["actions"]
    if values["expires_at"]:
        data["expires_at"] = values["expires_at"]  # a datetime-local, read in UTC
    return data, values


@page
@login_required
@require_http_methods(["GET", "POST"])
def keys(request):
    values, errors, new_key = {"scope": "all", "actions": list(ACTIONS)}, {}, None
    status = 200
    if request.method == "POST":
        body, values = _key_form(request.POST)
        data, errors = validated(ApiKeySerializer, body)
        if data is not None:
            row, secret = api_key_create(user_id=request.user.id, **data)
            new_key = {"row": row, "secret": secret}
            values = {"scope": "all", "actions": list(ACTIONS)}
            status = 201
        else:
            status = 400
    context = {
        "keys": ApiKey.objects.filter(user_id=request.user.id).order_by("-created_at", "-id"),
        "all_actions": ACTIONS,
        "values": values,
        "errors": errors,
        "new_key": new_key,
    }
    response = render(request, "web/keys.html", context, status=status)
    if new_key:
        response["Cache-Control"] = "no-store"  # the page holds a secret shown once
    return response


@page
@login_required
@require_http_methods(["GET", "POST"])
def key_revoke(request, key_id: int):
    key = ApiKey.objects.filter(user_id=request.user.id, pk=key_id).first()
    if key is None:
        return render(request, "web/not_found.html", {"what": "API key"}, status=404)
    if request.method == "POST":
        try:
            api_key_revoke(user_id=request.user.id, key_id=key.pk)
        except ApiKeyNotFound:
            pass  # revoked meanwhile: the outcome the person asked for
        messages.success(request, f"Revoked the key “{key.name}” ({key.prefix}…). It stops working now.")
        return redirect("web:keys")
    context = {
        "key": key,
        "title": "Revoke a key",
        "question": f"Revoke the key “{key.name}”?",
        "action": reverse("web:key-revoke", args=[key.pk]),
        "confirm": "Revoke key",
        "cancel": reverse("web:keys"),
    }
    return render(request, "web/key_revoke.html", context)
