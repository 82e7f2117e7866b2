#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incrementific.settings")
    try:
        from django.core.management import execute_from_command_line
    except ImportError:
        sys.exit(
            "manage.py: Django is not installed for this Python; `make install` makes .venv, "
            "then run .venv/bin/python manage.py (or use the make targets: make run, make migrate, make superuser)"
        )
    from incrementific.env import load_settings

    load_settings("manage.py")  # a missing or unreadable setting: one line, not a traceback
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
