"""The errors the Fastly client raises, and how a Fastly error response becomes one of them.

Every error carries Fastly's own ``msg`` and ``detail`` so a user can act on it. None ever carries the API
token or a request body: the client redacts both before building the message.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import quote, quote_plus

_REDACTED = "<redacted>"
_PLACEHOLDER = "\x00redacted\x00"  # stands in for _REDACTED while markup is stripped
_MAX_TEXT = 300  # Fastly's own msg and detail are cut to this many characters
_MAX_PAGE_TEXT = 200  # the text of a non-JSON error body (an HTML page from a proxy, say) to this many
_INVISIBLE_MARKUP = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


class FastlyError(Exception):
    """A request to Fastly failed, or its answer made no sense."""

    def __init__(self, msg: str, *, status: int | None = None, detail: str | None = None) -> None:
        super().__init__(msg)
        self.status = status
        self.msg = msg
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.msg} ({self.detail})" if self.detail else self.msg

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, msg={self.msg!r}, detail={self.detail!r})"


class NotFoundError(FastlyError):
    """404: the store or secret does not exist."""


class AlreadyExistsError(FastlyError):
    """409, or a 400 that says "duplicate": the name is taken."""


class InvalidRequestError(FastlyError):
    """Fastly refused the request as malformed (400, 422, other 4xx)."""


class UnauthorizedError(FastlyError):
    """401 or 403: the token is missing, invalid, or lacks the scope."""


class RateLimitedError(FastlyError):
    """429, and the reset is too far away to wait for."""

    def __init__(
        self,
        msg: str,
        *,
        status: int | None = 429,
        detail: str | None = None,
        reset_at: datetime | None = None,
    ) -> None:
        super().__init__(msg, status=status, detail=detail)
        self.reset_at = reset_at


class ServerUnavailableError(FastlyError):
    """5xx, connection errors and timeouts, once retries are exhausted."""


class SigningKeyMismatchError(FastlyError):
    """A client key's signature does not verify against the trusted signing key."""


class ValueTooLargeError(FastlyError):
    """A secret value is over Fastly's 64 KiB limit (raised before any request)."""


class UnexpectedResponseError(FastlyError):
    """Fastly answered with success but a body the client cannot read."""


class OutcomeUnknownError(ServerUnavailableError):
    """A request that must not be repeated blindly (create store, create secret) may or may not have been
    carried out: its answer was lost after it was sent (timeout, connection dropped), or it was a 2xx the client
    cannot read (not JSON, ``id`` or ``created_at`` missing). Look before repeating it.

    A ServerUnavailableError because, like one, it says nothing about the request being wrong: code that treats
    unavailability as "try again later" stays right (never a refusal, never Stalled). Code that must not create
    twice catches this subclass first.
    """


class ClientKeyRejectedError(InvalidRequestError):
    """Fastly refused a write because of the client key the value was sealed to (expired, or unknown to it).
    Drop that key (Sealer.discard), seal again with a fresh verified one, and retry the write once.

    Recognised by a heuristic, since Fastly's real answer is unrecorded: a 400 or 422 whose msg or detail names
    the client key ("client key" or "client_key") and says it is expired, unknown, invalid or not found.
    """


def read_error_body(content: bytes, *, redact: Iterable[str] = ()) -> tuple[str | None, str | None]:
    """(msg, detail) from any of Fastly's error shapes: ``{"msg","detail"}``,
    ``{"errors":[{"title","detail"}]}``, RFC 7807 problem+json (``title``, ``detail``), or plain text.
    Every string in ``redact`` is blanked out (in every form a server may echo it in) before truncation, so no
    part of one survives. A body that is not a JSON object gives no msg (the caller uses the status line) and,
    as detail, at most 200 characters of its text without markup."""
    secrets = tuple(redact)

    def clean(value: object, limit: int = _MAX_TEXT) -> str | None:
        if not isinstance(value, str) or not value.strip():
            return None
        text = " ".join(redact_text(value, secrets).split())
        return text if len(text) <= limit else text[: limit - 1] + "…"

    text = content.decode("utf-8", errors="replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        # Redacted before the markup goes (a tag inside a token must not split it), and again after (entities
        # decoded); the marker is put in last, so it is not taken for markup itself.
        plain = _without_markup(redact_text(text, secrets, marker=_PLACEHOLDER))
        return None, clean(plain.replace(_PLACEHOLDER, _REDACTED), _MAX_PAGE_TEXT)
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        return clean(first.get("title")) or clean(first.get("msg")), clean(first.get("detail"))
    return clean(body.get("msg")) or clean(body.get("title")), clean(body.get("detail"))


def _without_markup(text: str) -> str:
    text = _TAG.sub(" ", _INVISIBLE_MARKUP.sub(" ", text))
    return html.unescape(text)


def redact_text(text: str, secrets: Iterable[str], *, marker: str = _REDACTED) -> str:
    """``text`` with every non-empty string of ``secrets`` replaced by a marker: as given, and as a server may
    echo it: JSON-escaped (``\\"``, ``\\/``, Go's ``\\u003c``), percent-encoded (either case of hex, ``+`` or
    ``%20`` for a space) and HTML-escaped."""
    forms = {form for secret in secrets if secret for form in _echoed_forms(secret)}
    for form in sorted(forms, key=len, reverse=True):  # longest first: no form is left half replaced
        text = text.replace(form, marker)
    return text


def _echoed_forms(secret: str) -> set[str]:
    json_escaped = json.dumps(secret)[1:-1]
    go_escaped = json_escaped
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        go_escaped = go_escaped.replace(char, escape)
    forms = {secret, json_escaped, json_escaped.replace("/", "\\/"), go_escaped, go_escaped.replace("/", "\\/")}
    for encoded in (quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret)):
        forms.add(encoded)
        forms.add(re.sub(r"%[0-9A-F]{2}", lambda match: match[0].lower(), encoded))
    forms.add(html.escape(secret))
    forms.add(html.escape(secret, quote=False))
    return forms


def error_for_status(status: int, msg: str, detail: str | None, *, reset_at: datetime | None = None) -> FastlyError:
    """The FastlyError subclass that a response status (and, for 400, its message) stands for."""
    if status == 429:
        return RateLimitedError(msg, detail=detail, reset_at=reset_at)
    error_class: type[FastlyError]
    if status in (401, 403):
        error_class = UnauthorizedError
    elif status == 404:
        error_class = NotFoundError
    elif status == 409 or (status == 400 and _says_duplicate(msg, detail)):
        error_class = AlreadyExistsError
    elif status in (400, 422) and _says_client_key_refused(msg, detail):
        error_class = ClientKeyRejectedError
    elif 400 <= status < 500:
        error_class = InvalidRequestError
    elif status >= 500:
        error_class = ServerUnavailableError
    else:
        error_class = FastlyError
    return error_class(msg, status=status, detail=detail)


def _says_duplicate(msg: str, detail: str | None) -> bool:
    # The CLI renders a duplicate secret name as "Bad Request (duplicate: name)".
    words = f"{msg} {detail or ''}".lower()
    return "duplicate" in words or "already exists" in words


_CLIENT_KEY_REFUSALS = ("expired", "unknown", "invalid", "not found")


def _says_client_key_refused(msg: str, detail: str | None) -> bool:
    words = f"{msg} {detail or ''}".lower()
    names_the_key = "client key" in words or "client_key" in words
    return names_the_key and any(refusal in words for refusal in _CLIENT_KEY_REFUSALS)
