"""What an API key may do: which counters, which actions, until when (least privilege).

A scope is kept with the key's row in SQL and copied into the key's Redis entry, where a
counter's own script checks it in the same round trip as the change (counters/store.py); the
paths that check a key in Python (the list, create, delete, a key Redis forgot) ask
:meth:`KeyScope.allows`. A key made before scopes has none of the three: it may do everything,
for ever, as before.
"""

from dataclasses import dataclass
from datetime import datetime

ACTIONS = ("read", "next", "set", "create", "delete")


class ScopeDenied(Exception):
    """The key is valid, but not for this action on this counter; nothing changed (403)."""

    def __init__(self, action: str, name: str | None):
        super().__init__(action, name)
        self.action, self.name = action, name


@dataclass(frozen=True)
class KeyScope:
    counters: frozenset[str] | None = None  # None: every counter
    actions: frozenset[str] | None = None  # None: every action
    expires_at: datetime | None = None  # None: never

    @classmethod
    def of(cls, counters, actions, expires_at) -> "KeyScope":
        return cls(
            None if counters is None else frozenset(counters),
            None if actions is None else frozenset(actions),
            expires_at,
        )

    @property
    def limited(self) -> bool:
        return self.counters is not None or self.actions is not None

    def allows(self, action: str, name: str | None = None) -> bool:
        """May the key do ``action`` (one of ACTIONS) on the counter ``name``? ``name`` None: on
        the counters in scope (a list shows only those)."""
        if self.actions is not None and action not in self.actions:
            return False
        return name is None or self.counters is None or name in self.counters

    def check(self, action: str, name: str | None = None) -> None:
        if not self.allows(action, name):
            raise ScopeDenied(action, name)


EVERYTHING = KeyScope()
