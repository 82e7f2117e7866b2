from django import template

from counters.selectors import counter_list
from counters.web import next_url

register = template.Library()


@register.simple_tag(takes_context=True)
def counter_names(context) -> list[str]:
    """The names of the request's user's counters (for pages of other apps: the API keys page)."""
    return list(counter_list(owner_id=context["request"].user.id).values_list("name", flat=True))


@register.simple_tag(takes_context=True)
def next_address(context) -> str:
    """The absolute API address of `next` for the user's first counter (see counters.web.next_url)."""
    return next_url(context["request"])
