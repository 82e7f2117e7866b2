"""`python -m tests.bench_ab REF`, the command the developers' brief names: the harness itself is
tests/harness/bench_ab.py."""

import sys

from tests.harness.bench_ab import main

if __name__ == "__main__":
    sys.exit(main())
