"""The project's settings, with the environment a test run needs. Nothing else changes."""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "tests-only-not-a-secret-but-long-enough-for-hs256")
os.environ.setdefault("JWT_SIGNING_KEY", "tests-only-jwt-key-not-a-secret-but-long-enough-even-for-hs512-forgeries")
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="incrementific-tests-"))
# A tiny block, so that reservations happen every few increments and their paths are exercised.
os.environ.setdefault("COUNTER_BLOCK_SIZE", "3")

from incrementific.settings import *  # noqa: E402,F403

# A file, not SQLite's shared in-memory database: threads in the concurrency tests need real
# locking with a busy timeout ("database table is locked" errors are not retried).
DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}  # noqa: F405
# A test's rows are its own: no thread moves the history of sets behind its back (reads move it).
HISTORY_MOVE_SECONDS = 0
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
