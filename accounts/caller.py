"""Who is calling, and how: one object per request, built once by authentication and carried on
``request.auth`` (accounts/authentication.py).

A :class:`Caller` holds the owner whose counters the request may touch, the credential that a
counter's own script checks in the same round trip as the change (an access token's `rev`
against the owner's revocation mark, or an API key's entry in the owner's slot), and what the
history says of who made a change. Views hand it to counters' services, whose store verbs ask
it what the script checks (:meth:`Caller.gate`), and whose one retry loop calls it back for
the two answers that only SQL has:

* Redis holds no entry for the API key (it forgot it, or the key is not valid): SQL is asked,
  which puts the entry back or answers 401 (:meth:`Caller.key_forgotten`);
* Redis holds no revocation mark of its primary's own (a failover, fenced): SQL's is put back
  (:meth:`Caller.mark_forgotten`).

Either way nothing changed the first time, and the call is made again. An API key that names its owner (``inc_<id>.…``,
every key issued now) is checked in the counter's script itself; until then the caller is
*unchecked*: its owner is only what the key claims, and :meth:`Caller.owner` is the one way to
the owner for anything else, which checks the key first (a Redis round trip, SQL on a miss).
"""

from rest_framework import exceptions

from accounts import store
from accounts.scopes import EVERYTHING, KeyScope, ScopeDenied
from accounts.services import (
    api_key_hash,
    api_key_owner,
    api_key_record_use,
    api_key_user_id,
    api_key_user_id_in_sql,
    put_back_revocation_mark,
    revocation_mark,
)


def invalid_key() -> exceptions.AuthenticationFailed:
    return exceptions.AuthenticationFailed("Invalid or revoked API key.", "invalid_api_key")


class Caller:
    """See the module's docstring. ``credential`` is what a counter's script checks (None: nothing
    more to check, as for a session or a key checked already); ``token`` the access token
    itself, where there is one (simplejwt's, or a provider's)."""

    __slots__ = ("_owner", "credential", "token", "key_secret", "key_hashed", "_scope", "checked", "_not_revoked")

    def __init__(self, owner_id, credential: store.Credential = None, *, token=None):
        self._owner: int | None = owner_id
        self.credential = credential
        self.token = token
        self.key_secret = ""  # an API key's, when the caller holds one
        self.key_hashed = ""
        self._scope: KeyScope | None = EVERYTHING  # an API key's, once looked up
        self.checked = True  # False for an API key nothing has checked yet
        self._not_revoked = False  # an access token's mark was checked by owner(revocation=True)

    @classmethod
    def with_api_key(cls, secret: str) -> "Caller":
        """An API key's caller, not checked yet: the owner is the one the key names (None for a
        key issued before keys named their owner)."""
        hashed = api_key_hash(secret)
        caller = cls(api_key_owner(secret), store.KeyEntry(hashed))
        caller.key_secret, caller.key_hashed = secret, hashed
        caller._scope = None
        caller.checked = False
        return caller

    @property
    def named_owner(self) -> int | None:
        """Who the credential says the owner is: checked, unless ``checked`` is False."""
        return self._owner

    @property
    def key_prefix(self) -> str:
        """The API key's prefix as its row keeps it (``inc_42.AbCdEfGh``), or ''."""
        secret = self.key_secret
        return secret[: secret.find(".") + 9] if secret else ""

    def verify(self) -> int:
        """Check an API key now, if nothing did (a Redis round trip; SQL when Redis has no entry,
        which puts it back); 401 if it is not valid (unknown, revoked, expired). Returns the owner."""
        if self._scope is None:
            found = api_key_user_id(self.key_secret)
            if found is None:
                self.checked = True  # the answer is the 401: nothing is left to check
                raise invalid_key()
            self._owner, self._scope = found
            self.credential = None
            self.checked = True
        return self._owner

    def owner(self, action: str | None = None, name: str | None = None, *, revocation: bool = False) -> int:
        """The owner, the caller checked; with ``action``, 403 unless an API key's scope allows it
        (on the counter ``name``; None: on the counters in scope). ``revocation``: refuse an
        access token revoked since it was issued, first (once a request; one Redis read), for
        what checks no credential in its own Redis call."""
        owner = self.verify()
        if revocation and not self._not_revoked:
            self._check_not_revoked()
        if action is not None:
            self._scope.check(action, name)
        return owner

    def checked_scope(self) -> KeyScope:
        """What the caller may do, the caller checked first: an API key's scope, or everything."""
        self.verify()
        return self._scope

    def _check_not_revoked(self) -> None:
        credential = self.credential
        if isinstance(credential, store.TokenRev):
            try:
                try:
                    store.check_not_revoked(self._owner, credential.rev)
                except store.RevocationUnknown:  # nothing changed: SQL's mark goes back, and again
                    self.mark_forgotten()
                    store.check_not_revoked(self._owner, credential.rev)
            except store.TokenRevoked:
                raise exceptions.AuthenticationFailed("Token has been revoked.", "token_revoked") from None
        self._not_revoked = True

    def owner_in_sql(self, action: str, name: str) -> int:
        """The owner, the caller checked by SQL alone, for a call that must not need Redis (a
        gapless counter's, counters/gapless.py): an API key's row and scope, or an access token's
        `rev` against its user's revocation mark; 401 or 403 as :meth:`owner` would answer."""
        if self._scope is None:
            found = api_key_user_id_in_sql(self.key_secret)
            self.checked = True
            if found is None:
                raise invalid_key()
            self._owner, self._scope = found
            self.credential = None
        elif isinstance(self.credential, store.TokenRev) and not self._not_revoked:
            if self.credential.rev < revocation_mark(self._owner):
                raise exceptions.AuthenticationFailed("Token has been revoked.", "token_revoked")
            self._not_revoked = True
        self._scope.check(action, name)
        return self._owner

    def owner_for_script(self) -> int:
        """The owner to name in a counter's script call, which checks the credential itself: the
        one the credential names (a key issued before keys named their owner is checked now)."""
        return self._owner if self._owner is not None else self.verify()

    def gate(self, owner_id: int, action: str, name: str) -> tuple[str, list]:
        """What a counter's script checks of the caller (lua/gate.lua, accounts.store.gate) before
        it does ``action`` on the counter ``name``. A key checked already is checked here: 403
        unless its scope allows the action."""
        if self.credential is None and self._scope is not EVERYTHING:
            self._scope.check(action, name)
        return store.gate(owner_id, self.credential, action, name)

    # What counters/services.py's retry loop calls when the script refused the caller for what
    # Redis did not know; nothing changed, and the call is made again after.

    def key_forgotten(self, action: str, name: str) -> None:
        """Redis has no entry for the key: it forgot it, or the key is not valid. SQL answers,
        and puts the entry back (or it is the 401); then the scope, in Python."""
        self.verify()
        self._scope.check(action, name)

    def mark_forgotten(self) -> None:
        """Redis has no revocation mark of its primary's own (a failover): SQL's goes back."""
        put_back_revocation_mark(self._owner)

    def out_of_scope(self, action: str, name: str) -> ScopeDenied:
        self.checked = True  # the key is valid: the answer is the 403, not a 401
        return ScopeDenied(action, name)

    def key_used(self) -> None:
        """The script found the key's last use older than KEY_TOUCH_SECONDS: SQL records it too."""
        api_key_record_use(self.key_hashed)

    def __repr__(self) -> str:
        how = "API key" if self.key_secret else type(self.credential).__name__
        return f"<Caller {self._owner}{'' if self.checked else '?'} ({how})>"
