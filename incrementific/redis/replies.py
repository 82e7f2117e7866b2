"""What a script's reply's first element means: the codes of lua/*.lua, named once for Python.

The Lua files write them as numbers (each opens with its replies); this enum is their mirror,
and tests/test_store.py checks that every code a script can return is named here.
"""

from enum import IntEnum


class Reply(IntEnum):
    MISSING = 0  # no state this primary wrote: {0, the primary}
    DONE = 1  # {1, value, created, touched}
    OVERFLOW = 2  # past 2**63-1; nothing changed
    LIMIT_REACHED = 3  # {3, the value, the primary}: reserve more and try again
    OVER_RATE = 4  # the owner's COUNTER_RATE_LIMIT is used up
    TOKEN_REVOKED = 5  # the access token was issued before its user's revocation mark
    API_KEY_UNKNOWN = 6  # no entry of this primary's for the API key (or it expired)
    OUT_OF_SCOPE = 7  # the API key may not do this to this counter
    IDEMPOTENCY_KEY_REUSED = 8  # the Idempotency-Key was used for another request
    REPLAYED = 9  # {9, value, created, date, settings} (or {9, the kept answer}): the answer already given
    IDEMPOTENCY_KEY_IN_PROGRESS = 10  # the first request with that key is still going on
    REVOCATION_UNKNOWN = 11  # no revocation mark of this primary's own: SQL's is the truth
    SETTINGS_DIFFER = 12  # {12, the counter's settings}: the caller's idea of its series is out of date
