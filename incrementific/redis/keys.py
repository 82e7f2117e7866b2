"""Every Redis key the service writes, built here and nowhere else.

One user's keys share the hash tag ``{u<id>}``: in a Redis Cluster they land in one slot, so
one script can check a caller's credential, count their rate and change their counter at once.
``~`` is not a counter name character, so no counter is ever named like the owner's other keys.

=====================================  ====================================================
key                                    what it holds (slot: the owner's, unless said)
=====================================  ====================================================
``ctr:{u42}:invoices``                 a counter: hash ``v`` value, ``l`` limit, ``c`` created,
                                       ``o`` the primary that wrote it (when fenced)
``ctr:{u42}:~revoked``                 the owner's access-token revocation mark
``ctr:{u42}:~rate:<window>``           the owner's COUNTER_RATE_LIMIT count for one window
``ctr:{u42}:~key:<sha256>``            an API key's entry (accounts/keystore.py)
``ctr:{u42}:~idem:<sha256>``           an Idempotency-Key's record
``ctr:{u42}:~changes``                 a stream of the owner's sets, until counters/history.py
                                       moves them to SQL
``akey:<sha256>``                      a key issued before keys named their owner: its own
                                       slot, read alone (never inside a counter's script)
``rl:<scope>:<ident>:<window>``        an account rate limit (accounts/ratelimit.py): its own
                                       slot, read alone
``oidc:<sha256>``                      the user id of an OpenID Connect subject (issuer and
                                       ``sub``, hashed; accounts/oidc.py): its own slot
=====================================  ====================================================
"""

import hashlib


def counter(owner_id: int, name: str) -> str:
    """The Redis key of a counter.

    >>> counter(42, "invoices")
    'ctr:{u42}:invoices'

    Built from what every request already carries (the user id from the token and the name
    from the URL), so finding a counter needs no SQL. Names are ``[A-Za-z0-9_.-]`` only, so they
    can contain neither braces nor a colon.
    """
    return f"ctr:{{u{owner_id}}}:{name}"


def rate(owner_id: int, window: int) -> str:
    """The owner's request count for one window of COUNTER_RATE_LIMIT.

    >>> rate(42, 29594)
    'ctr:{u42}:~rate:29594'
    """
    return f"ctr:{{u{owner_id}}}:~rate:{window}"


def revocation(owner_id: int) -> str:
    """When the owner's access tokens were last revoked (epoch milliseconds), expiring with them.

    Every token carries, as its `rev` claim, this mark as it was when the token was issued (0
    if none); a token whose `rev` is below the mark was issued before the revocation. A mark
    compares milliseconds with milliseconds, so a login just after a revocation is never
    caught by it, and a later revocation always writes a larger mark.

    >>> revocation(42)
    'ctr:{u42}:~revoked'
    """
    return f"ctr:{{u{owner_id}}}:~revoked"


def api_key_entry(owner_id: int | None, hashed: str) -> str:
    """An API key's entry: in its owner's slot when the key names the owner (``inc_<id>.…``,
    every key issued now), so a counter's script can check it in the same call.

    >>> api_key_entry(42, "9f86d0")
    'ctr:{u42}:~key:9f86d0'
    >>> api_key_entry(None, "9f86d0")
    'akey:9f86d0'
    """
    return f"akey:{hashed}" if owner_id is None else f"ctr:{{u{owner_id}}}:~key:{hashed}"


def idempotency(owner_id: int, client_key: str) -> str:
    """The record of an Idempotency-Key, in its owner's slot: two users' keys never meet.

    >>> idempotency(42, "8e03978e-40d5-43e8-bc93-6894a57f9324")
    'ctr:{u42}:~idem:238c5b6ddb487a6d063ce774c2f42b20234bfc3e2c83e16449d262be8e66f4b4'

    The client's key is hashed: it may hold any printable character, braces and colons included.
    """
    return f"ctr:{{u{owner_id}}}:~idem:{hashlib.sha256(client_key.encode()).hexdigest()}"


def changes(owner_id: int) -> str:
    """The owner's sets not yet in SQL, a stream appended to by the set's own script.

    >>> changes(42)
    'ctr:{u42}:~changes'
    """
    return f"ctr:{{u{owner_id}}}:~changes"


def owner_of_changes(key: str) -> int:
    """The owner whose stream of changes ``key`` is.

    >>> owner_of_changes('ctr:{u42}:~changes')
    42
    """
    return int(key[key.index("{u") + 2 : key.index("}")])


def account_rate(scope: str, ident: str, window: int) -> str:
    """One window of an account rate limit (settings.RATE_LIMITS).

    >>> account_rate("login", "alice", 29594)
    'rl:login:alice:29594'
    """
    return f"rl:{scope}:{ident}:{window}"


def provider_identity(issuer: str, subject: str) -> str:
    """Which user an OpenID Connect provider's subject is (accounts.models.ProviderIdentity).

    >>> provider_identity("https://id.example.com", "248289761001")
    'oidc:40ed35e508c434b3670b68a6abdaf913c4a336fad42d406c1476a0997b0e6621'
    """
    return "oidc:" + hashlib.sha256(f"{issuer}\0{subject}".encode()).hexdigest()
