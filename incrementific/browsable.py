"""How the API's pages read in the browsable API (and in OPTIONS): a name and a description per
page, rendered as Markdown, instead of one class docstring repeated on the list, each instance and
each action, under names made from class names ("Api Key List")."""

from django.utils.encoding import smart_str
from rest_framework import routers
from rest_framework.utils import formatting


class Described:
    """For a viewset: `pages` maps the router's suffix ("List", "Instance") or an action's name
    to the page's title and the paragraphs of its Markdown description (each dedented alone)."""

    pages: dict[str, tuple[str, ...]] = {}

    def _page(self) -> tuple[str, ...] | None:
        return self.pages.get(getattr(self, "name", None) or getattr(self, "suffix", None) or "")

    def get_view_name(self) -> str:
        page = self._page()
        return page[0] if page else super().get_view_name()

    def get_view_description(self, html: bool = False) -> str:
        page = self._page()
        if page is None:
            return super().get_view_description(html)
        description = "\n\n".join(formatting.dedent(smart_str(paragraph)).strip() for paragraph in page[1:])
        return formatting.markup_description(description) if html else description


class ApiRootView(routers.APIRootView):
    """**incrementific**: integers as a service. Each of your counters hands out numbers that never
    repeat: read it, take its `next` value, or set it to any whole number from 0 to 2^63-1.

    * [Counters](/api/counters): yours, with their values; create, read, set, take the next value, delete.
    * [API keys](/api/keys): long-lived credentials for scripts and servers.
    * Log in with a token from `POST /api/auth/token`, an API key, or this browser's session.

    The [API documentation](/api/docs) describes every endpoint; the [web app](/) does the same
    things with forms."""

    name = "API Root"
