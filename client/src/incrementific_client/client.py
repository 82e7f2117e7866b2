"""The client: one method per counter operation, each exactly once however often it retries.

Every change is sent with an Idempotency-Key made once per call and sent again, unchanged, with
each retry, so a retry after a lost answer gets the first answer back (``replayed``) instead of
taking a second number. What is retried: a connection refused, reset or dropped, a timeout, a
502, 503 or 504, a 409 ``idempotency_key_in_progress`` (the first attempt is still being
answered) and a 429 after its Retry-After. With exponential backoff and full jitter, within
``max_retries`` and a total ``deadline``. Anything else (another 4xx) is final, and raised at once.
"""

import datetime
import http.client
import json
import os
import random
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any, Optional, Union

from incrementific_client import __version__
from incrementific_client.errors import AlreadyVoided, IncrementificError, Unavailable, error_for

RETRY_STATUSES = frozenset([502, 503, 504])
DateLike = Union[str, datetime.date, None]


@dataclass(frozen=True)
class Counter:
    """A counter as an answer showed it. ``formatted`` is the value as the counter's format
    prints it (the value alone without one); ``period`` the period of a series the value is of;
    ``replayed``: this answer is the one an earlier attempt of the same call was given."""

    name: str
    value: int
    formatted: str
    period: Optional[str]
    reset: Optional[str]
    timezone: str
    format: Optional[str]
    created_at: str
    url: str
    replayed: bool = False
    gapless: bool = False

    @classmethod
    def of(cls, body: dict[str, Any], replayed: bool = False) -> "Counter":
        return cls(
            name=body["name"],
            value=body["value"],
            formatted=body.get("formatted", str(body["value"])),
            period=body.get("period"),
            reset=body.get("reset"),
            timezone=body.get("timezone", "UTC"),
            format=body.get("format"),
            created_at=body["created_at"],
            url=body["url"],
            replayed=replayed,
            gapless=body.get("gapless", False),
        )


@dataclass(frozen=True)
class Period:
    period: str
    value: int
    formatted: str


@dataclass(frozen=True)
class Entry:
    """One number of a gapless counter's log: who got it, when, with which metadata; and once
    voided, by whom, when and why. ``issued_by`` and ``voided_by``: ``{"user", "api_key"}``."""

    value: int
    period: Optional[str]
    formatted: str
    status: str
    issued_at: str
    issued_by: dict[str, Any]
    surface: str
    request_id: str
    metadata: Optional[dict[str, Any]]
    voided_at: Optional[str] = None
    voided_by: Optional[dict[str, Any]] = None
    void_reason: Optional[str] = None

    @classmethod
    def of(cls, body: dict[str, Any]) -> "Entry":
        return cls(**{name: body.get(name) for name in cls.__dataclass_fields__})


def _date(day: DateLike) -> Optional[str]:
    return day.isoformat() if isinstance(day, datetime.date) else day


class Client:
    """``Client("https://counters.example.com", api_key="inc_...")``; or ``token=`` an access token.

    ``timeout``: seconds for one attempt; ``max_retries``: attempts after the first; ``deadline``:
    seconds for the whole call, retries and waits included.
    """

    def __init__(
        self,
        url: str,
        api_key: Optional[str] = None,
        token: Optional[str] = None,
        *,
        timeout: float = 10.0,
        max_retries: int = 8,
        deadline: float = 60.0,
        backoff: float = 0.25,
        max_backoff: float = 8.0,
    ):
        if api_key and token:
            raise ValueError("give an API key or an access token, not both")
        self.url = url.rstrip("/")
        self._credential = api_key or token
        self.timeout = timeout
        self.max_retries = max_retries
        self.deadline = deadline
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.attempts = 0  # every request sent, retries included (for tests and logs)

    @classmethod
    def from_env(cls, **options: Any) -> "Client":
        """From INCREMENTIFIC_URL and INCREMENTIFIC_API_KEY (or INCREMENTIFIC_TOKEN, an access
        token); ``options`` override them and set the rest."""
        url = options.pop("url", None) or os.environ.get("INCREMENTIFIC_URL")
        if not url:
            raise ValueError("no service URL: set INCREMENTIFIC_URL or give url=")
        api_key = options.pop("api_key", None) or os.environ.get("INCREMENTIFIC_API_KEY")
        token = options.pop("token", None) or (None if api_key else os.environ.get("INCREMENTIFIC_TOKEN"))
        return cls(url, api_key=api_key, token=token, **options)

    # --- counters ---------------------------------------------------------------------------------

    def next(
        self, name: str, step: int = 1, date: DateLike = None, metadata: Optional[dict[str, Any]] = None
    ) -> Counter:
        """Take the next value (``step`` of them); ``date``: the document's, for a series."""
        body: dict[str, Any] = {}
        if step != 1:
            body["step"] = step
        if date is not None:
            body["date"] = _date(date)
        if metadata is not None:
            body["metadata"] = metadata  # a gapless series' (the service refuses it elsewhere)
        return self._counter("POST", f"/api/counters/{_quote(name)}/next", body or None)

    def current(self, name: str, date: DateLike = None) -> Counter:
        query = "" if date is None else "?" + urllib.parse.urlencode({"date": _date(date)})
        return self._counter("GET", f"/api/counters/{_quote(name)}{query}")

    def set(self, name: str, value: int, date: DateLike = None) -> Counter:
        body: dict[str, Any] = {"value": value}
        if date is not None:
            body["date"] = _date(date)
        return self._counter("PUT", f"/api/counters/{_quote(name)}", body)

    def create(
        self,
        name: str,
        value: int = 0,
        *,
        reset: Optional[str] = None,
        timezone: Optional[str] = None,
        format: Optional[str] = None,
        gapless: bool = False,
    ) -> Counter:
        """A counter; ``gapless``: every number recorded as it is handed out (invoices)."""
        body: dict[str, Any] = {"name": name, "value": value}
        for setting, given in (("reset", reset), ("timezone", timezone), ("format", format)):
            if given is not None:
                body[setting] = given
        if gapless:
            body["gapless"] = True
        return self._counter("POST", "/api/counters", body)

    def delete(self, name: str) -> None:
        self._call("DELETE", f"/api/counters/{_quote(name)}")

    def counters(self) -> list[Counter]:
        """All your counters, every page."""
        return [Counter.of(item) for item in self._pages("/api/counters")]

    def periods(self, name: str) -> list[Period]:
        """Each period of a series that has a value, newest first."""
        return [Period(**item) for item in self._pages(f"/api/counters/{_quote(name)}/periods")]

    # --- a gapless counter's log ----------------------------------------------------------------

    def values(self, name: str, date: DateLike = None, status: Optional[str] = None) -> list[Entry]:
        """Every number the gapless counter handed out, newest first (``date``: one period's;
        ``status``: "issued" or "voided" only)."""
        query = {k: v for k, v in (("date", _date(date)), ("status", status)) if v is not None}
        path = f"/api/counters/{_quote(name)}/values" + ("?" + urllib.parse.urlencode(query) if query else "")
        return [Entry.of(item) for item in self._pages(path)]

    def value(self, name: str, value: int, date: DateLike = None) -> Entry:
        """One number's entry (``date``: a day in its period, for a series)."""
        query = "" if date is None else "?" + urllib.parse.urlencode({"date": _date(date)})
        answer, _ = self._call("GET", f"/api/counters/{_quote(name)}/values/{int(value)}{query}")
        return Entry.of(answer)

    def void(self, name: str, value: int, reason: str, date: DateLike = None) -> Entry:
        """Void a number that could not be used, with a reason. A retry whose first attempt voided
        it already (its answer lost) finds it voided with the same reason and returns that."""
        body: dict[str, Any] = {"reason": reason}
        if date is not None:
            body["date"] = _date(date)
        path = f"/api/counters/{_quote(name)}/values/{int(value)}/void"
        started = self.attempts
        try:
            answer, _ = self._call("POST", path, body)
        except AlreadyVoided:
            if self.attempts - started < 2:
                raise  # the first attempt was refused: somebody else voided it
            entry = self.value(name, value, date)
            if entry.void_reason != reason:
                raise
            return entry
        return Entry.of(answer)

    # --- the calls ------------------------------------------------------------------------------

    def _counter(self, method: str, path: str, body: Optional[dict[str, Any]] = None) -> Counter:
        answer, replayed = self._call(method, path, body)
        return Counter.of(answer, replayed)

    def _pages(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        url: Optional[str] = path
        while url:
            page, _ = self._call("GET", url)
            items += page["results"]
            url = page.get("next")
        return items

    def _call(self, method: str, path: str, body: Optional[dict[str, Any]] = None):
        """(the answer's JSON, whether it was replayed). One Idempotency-Key for every attempt
        of a change."""
        key = None if method == "GET" else str(uuid.uuid4())
        started = time.monotonic()
        last: Optional[IncrementificError] = None
        for attempt in range(self.max_retries + 1):
            remaining = self.deadline - (time.monotonic() - started)
            if remaining <= 0:
                break
            wait = None
            try:
                return self._send(method, path, body, key, min(self.timeout, remaining))
            except _Retry as retry:
                last, wait = retry.error, retry.after
            if attempt == self.max_retries:
                break
            pause = wait if wait is not None else random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))
            if pause >= self.deadline - (time.monotonic() - started):
                break  # waiting would pass the deadline: give up now, not after the wait
            time.sleep(pause)
        if last is None:
            last = Unavailable("deadline", "No attempt could be made before the deadline.")
        if isinstance(last, Unavailable) or last.status in RETRY_STATUSES:
            raise Unavailable(last.code, last.message, last.status, last.request_id, idempotency_key=key)
        raise last

    def _send(self, method: str, path: str, body, key: Optional[str], timeout: float):
        url = path if path.startswith("http") else self.url + path
        headers = {"Accept": "application/json", "User-Agent": f"incrementific-client/{__version__}"}
        if self._credential:
            headers["Authorization"] = f"Bearer {self._credential}"
        if key is not None:
            headers["Idempotency-Key"] = key
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        self.attempts += 1
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                raw = answer.read()
                replayed = answer.headers.get("Idempotent-Replayed") == "true"
                return (json.loads(raw) if raw else None), replayed
        except urllib.error.HTTPError as refused:
            raise self._refusal(refused) from None
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, socket.timeout, OSError) as lost:
            reason = getattr(lost, "reason", lost)
            raise _Retry(Unavailable("connection", f"No answer from {self.url}: {reason}")) from None

    def _refusal(self, refused: urllib.error.HTTPError) -> Exception:
        request_id = refused.headers.get("X-Request-ID")
        try:
            body = json.loads(refused.read() or b"{}")
        except (ValueError, OSError):
            body = {}
        code = body.get("code") or f"http_{refused.code}"
        message = body.get("detail") or refused.reason or "error"
        if body.get("fields"):
            message += " " + "; ".join(f"{field}: {' '.join(map(str, errs))}" for field, errs in body["fields"].items())
        error = error_for(refused.code, code, message, request_id)
        if refused.code in RETRY_STATUSES or code == "idempotency_key_in_progress":
            return _Retry(error)
        if refused.code == 429:
            return _Retry(error, after=_seconds(refused.headers.get("Retry-After")))
        return error


class _Retry(Exception):
    def __init__(self, error: IncrementificError, after: Optional[float] = None):
        super().__init__(error)
        self.error = error
        self.after = after


def _seconds(retry_after: Optional[str]) -> float:
    try:
        return max(0.0, float(retry_after or 1))
    except ValueError:
        return 1.0


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")
