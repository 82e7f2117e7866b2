from django.apps import AppConfig


class CountersConfig(AppConfig):
    name = "counters"

    def ready(self) -> None:
        from counters import signals  # noqa: F401  (connects the receivers)
