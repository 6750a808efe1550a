"""The errors the Fastly client raises, and how a Fastly error response becomes one of them.

Every error carries Fastly's own ``msg`` and ``detail`` so a user can act on it. None ever carries the API
token or a request body: the client redacts both before building the message.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

_REDACTED = "<redacted>"
_MAX_TEXT = 300  # a non-JSON error body (an HTML page from a proxy, say) is cut to this many characters


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


def read_error_body(content: bytes, *, redact: Iterable[str] = ()) -> tuple[str | None, str | None]:
    """(msg, detail) from any of Fastly's error shapes: ``{"msg","detail"}``,
    ``{"errors":[{"title","detail"}]}``, RFC 7807 problem+json (``title``, ``detail``), or plain text.
    Every string in ``redact`` is blanked out before truncation, so no part of one survives."""
    secrets = tuple(redact)

    def clean(value: object) -> str | None:
        if not isinstance(value, str) or not value.strip():
            return None
        text = " ".join(redact_text(value, secrets).split())
        return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"

    text = content.decode("utf-8", errors="replace")
    try:
        body = json.loads(text)
    except ValueError:
        return clean(text), None
    if not isinstance(body, dict):
        return clean(text), None
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        return clean(first.get("title")) or clean(first.get("msg")), clean(first.get("detail"))
    return clean(body.get("msg")) or clean(body.get("title")), clean(body.get("detail"))


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-empty string of ``secrets`` replaced by a marker."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return text


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
