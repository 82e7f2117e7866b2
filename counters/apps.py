from django.apps import AppConfig


class CountersConfig(AppConfig):
    name = "counters"

    def ready(self) -> None:
        from counters import checks, signals  # noqa: F401  (registers the checks and receivers)
