from django.core.management.commands import check

from counters.checks import redis_checks


class Command(check.Command):
    """Django's `check`, with the checks of the counters' Redis (counters/checks.py)."""

    help = check.Command.help + " Includes the checks of the counters' Redis (REDIS_URL)."

    def handle(self, *app_labels, **options):
        with redis_checks():
            return super().handle(*app_labels, **options)
