"""The store's Lua scripts (lua/*.lua), each run in one round trip.

Each file opens with its KEYS, ARGV and replies. Every script begins with lua/fence.lua, under a
first line the loader writes, ``local FENCED = true`` or ``false`` (connection.fenced()): so the
two variants are two scripts with two SHA1s, and a single server's never calls INFO.
"""

import functools
import hashlib
from importlib.resources import files

from redis.exceptions import NoScriptError

from incrementific.redis import connection


def _read(name: str) -> str:
    return files(__package__).joinpath("lua", f"{name}.lua").read_text()


class Script:
    """A script made of lua/fence.lua and the named parts, in that order."""

    def __init__(self, *parts: str):
        self.parts = ("fence", *parts)

    @functools.cache  # noqa: B019 (a few module-level scripts, kept for the process's life)
    def source(self, fenced: bool) -> tuple[str, str]:
        """(the source, its SHA1)."""
        text = f"local FENCED = {'true' if fenced else 'false'}\n" + "\n".join(_read(part) for part in self.parts)
        return text, hashlib.sha1(text.encode()).hexdigest()

    def __call__(self, keys: list[str], args: list) -> object:
        """EVALSHA, or EVAL when Redis restarted and lost its script cache (as redis-py's
        ``Script.__call__`` does, without its per-call encoder look-up). Raises RedisError."""
        src, sha = self.source(connection.fenced())
        try:
            return connection.command("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            return connection.command("EVAL", src, len(keys), *keys, *args)


NEXT = Script("gate", "next")
SET = Script("gate", "set")
GET = Script("gate", "get")
RESTORE = Script("restore")
CREATE = Script("create")
IDEMPOTENCY_BEGIN = Script("idempotency_begin")
IDEMPOTENCY_FINISH = Script("idempotency_finish")
IDEMPOTENCY_RELEASE = Script("idempotency_release")
API_KEY_LOOKUP = Script("api_key_lookup")
API_KEY_REMEMBER = Script("api_key_remember")
REVOKE = Script("revoke")
MARK = Script("mark")
PERIODS = Script("periods")
SETTINGS = Script("settings")
