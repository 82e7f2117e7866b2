"""`incrementific`: a counter's next value in one line of a script or a CI job.

incrementific next builds        # prints 42 (or the formatted value) and nothing else
"""

import argparse
import dataclasses
import json
import sys
from typing import Optional

from incrementific_client import __version__
from incrementific_client.client import Client
from incrementific_client.errors import (
    AuthenticationError,
    IncrementificError,
    NotFound,
    PermissionDenied,
    Unavailable,
)

# Exit codes, documented in --help (argparse itself exits 2 on a usage error).
OK, ERROR, USAGE, DENIED, NOT_FOUND, UNAVAILABLE = 0, 1, 2, 3, 4, 5

EPILOG = """\
configuration:
  INCREMENTIFIC_URL       the service, e.g. https://counters.example.com (or --url)
  INCREMENTIFIC_API_KEY   an API key (or --api-key); INCREMENTIFIC_TOKEN for an access token

output:
  the value alone on stdout (the formatted value where the counter has a format), or with
  --json the whole answer; errors go to stderr as one line: the error code, the message and
  the request id.

exit codes:
  0  done
  1  refused: bad input, a conflict (counter_exists, counter_overflow), another API error
  2  usage: a wrong command line, or no URL
  3  authentication or permission: a missing, wrong or expired credential, or outside an
     API key's scope
  4  not found: no such counter
  5  unavailable: no answer (or 502/503/504) after every retry the deadline allowed; a change
     may have been made, and running the same command again takes another value

Changes are retried with one Idempotency-Key, so a lost answer never takes a second value.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="incrementific",
        description="Counters and series of incrementific, from a shell.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", help="the service's URL (default: $INCREMENTIFIC_URL)")
    parser.add_argument("--api-key", help="an API key (default: $INCREMENTIFIC_API_KEY)")
    parser.add_argument("--token", help="an access token (default: $INCREMENTIFIC_TOKEN)")
    parser.add_argument("--json", action="store_true", help="print the whole answer as JSON")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds for one attempt (default 10)")
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds for everything, retries included (60)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    take = commands.add_parser("next", help="take the next value and print it")
    take.add_argument("name")
    take.add_argument("--step", type=int, default=1)
    take.add_argument("--date", help="the document's date, YYYY-MM-DD (a series' period)")
    take.add_argument(
        "--metadata",
        type=_json_object,
        help='a JSON object kept with the number (a gapless counter): {"invoice": "A-1"}',
    )

    current = commands.add_parser("current", help="print the current value")
    current.add_argument("name")
    current.add_argument("--date", help="a series' period, by a date in it")

    set_ = commands.add_parser("set", help="set the value and print it")
    set_.add_argument("name")
    set_.add_argument("value", type=int)
    set_.add_argument("--date", help="a series' period, by a date in it")

    create = commands.add_parser("create", help="create a counter and print its value")
    create.add_argument("name")
    create.add_argument("--value", type=int, default=0)
    create.add_argument("--reset", choices=["yearly", "monthly", "daily"])
    create.add_argument("--timezone")
    create.add_argument("--format", help="e.g. INV-{year}-{value:05}")
    create.add_argument("--gapless", action="store_true", help="record every number as it is handed out")

    void = commands.add_parser("void", help="void a number of a gapless counter, and print it")
    void.add_argument("name")
    void.add_argument("value", type=int)
    void.add_argument("reason")
    void.add_argument("--date", help="a series' period, by a date in it")
    return parser


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not JSON") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("not a JSON object")
    return value


def _exit_code(error: IncrementificError) -> int:
    if isinstance(error, Unavailable):
        return UNAVAILABLE
    if isinstance(error, (AuthenticationError, PermissionDenied)):
        return DENIED
    if isinstance(error, NotFound):
        return NOT_FOUND
    return ERROR


def main(argv: Optional[list[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        client = Client.from_env(
            url=args.url, api_key=args.api_key, token=args.token, timeout=args.timeout, deadline=args.deadline
        )
    except ValueError as exc:
        parser.print_usage(sys.stderr)
        print(f"incrementific: {exc}", file=sys.stderr)
        return USAGE
    try:
        if args.command == "next":
            counter = client.next(args.name, step=args.step, date=args.date, metadata=args.metadata)
        elif args.command == "current":
            counter = client.current(args.name, date=args.date)
        elif args.command == "set":
            counter = client.set(args.name, args.value, date=args.date)
        elif args.command == "void":
            counter = client.void(args.name, args.value, args.reason, date=args.date)
        else:
            counter = client.create(
                args.name,
                args.value,
                reset=args.reset,
                timezone=args.timezone,
                format=args.format,
                gapless=args.gapless,
            )
    except IncrementificError as error:
        where = f" (request id {error.request_id})" if error.request_id else ""
        print(f"incrementific: {error.code}: {error.message}{where}", file=sys.stderr)
        return _exit_code(error)
    if args.json:
        print(json.dumps(dataclasses.asdict(counter), sort_keys=True))
    else:
        print(counter.formatted)
    return OK


if __name__ == "__main__":
    raise SystemExit(main())
