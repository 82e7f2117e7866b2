from django import template
from django.utils.html import format_html

from incrementific.idempotency import FORM_FIELD, form_key

register = template.Library()


@register.simple_tag
def idempotency_field():
    """A form's own Idempotency-Key, new each time the page is drawn: sent twice (a double click,
    a resubmitted form), the form makes its change once (incrementific/idempotency.py)."""
    return format_html('<input type="hidden" name="{}" value="{}">', FORM_FIELD, form_key())
