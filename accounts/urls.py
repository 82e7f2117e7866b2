from django.urls import re_path

from accounts import views


def route(prefix: str, view, name: str):
    """A path that answers with and without its trailing slash, without a redirect."""
    return re_path(rf"^{prefix}/?$", view, name=name)


urlpatterns = [
    route("register", views.RegisterView.as_view(), "register"),
    route("token", views.TokenView.as_view(), "token"),
    route("token/refresh", views.TokenRefreshView.as_view(), "token-refresh"),
    route("logout", views.LogoutView.as_view(), "logout"),
    route("me", views.MeView.as_view(), "me"),
    route("password", views.PasswordView.as_view(), "password"),
]
