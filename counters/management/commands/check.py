from django.core.management.commands import check

from counters.checks import describe_counter_redis, redis_checks


class Command(check.Command):
    """Django's `check`, with the checks of the counters' Redis (counters/checks.py)."""

    help = (
        check.Command.help
        + " Includes the checks of the counters' Redis (REDIS_URL or REDIS_SENTINELS), and names its topology."
    )

    def handle(self, *app_labels, **options):
        topology = describe_counter_redis()
        if topology:
            self.stdout.write(topology)
        with redis_checks():
            return super().handle(*app_labels, **options)
