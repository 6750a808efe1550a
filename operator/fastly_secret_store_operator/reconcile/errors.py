"""The one error type reconcile functions raise: a one-word reason and a message that says what to do."""

from __future__ import annotations

from datetime import UTC, datetime

from fastly_secret_store_operator.fastly import (
    FastlyError,
    NotFoundError,
    RateLimitedError,
    ServerUnavailableError,
    SigningKeyMismatchError,
    UnauthorizedError,
)


class ReconcileError(Exception):
    """A failure shown to the user as a condition.

    `stalled` failures need a person to act (a wrong token, a missing Secret, a name clash); the others are
    expected to heal on their own (Fastly unavailable, rate limited) and are retried after `retry_after` seconds.
    """

    def __init__(self, reason: str, message: str, *, stalled: bool = True, retry_after: float | None = None):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.stalled = stalled
        self.retry_after = retry_after


def from_fastly(error: FastlyError, *, token_source: str) -> ReconcileError:
    """Translate a Fastly API failure into what the user should do about it."""
    detail = str(error)
    if isinstance(error, UnauthorizedError):
        return ReconcileError(
            "Unauthorized",
            f"Fastly rejected the API token from {token_source} ({detail}): put a valid token with access to "
            "secret stores there; the operator picks it up without a restart",
        )
    if isinstance(error, RateLimitedError):
        wait = None
        if error.reset_at is not None:
            wait = max(1.0, (error.reset_at - datetime.now(UTC)).total_seconds())
        until = f" until {error.reset_at:%Y-%m-%dT%H:%M:%SZ}" if error.reset_at else ""
        return ReconcileError(
            "RateLimited",
            f"Fastly's write rate limit for this token is spent{until}; the operator waits and resumes on its own",
            stalled=False,
            retry_after=wait,
        )
    if isinstance(error, SigningKeyMismatchError):
        return ReconcileError(
            "SigningKeyMismatch",
            f"the client key Fastly served is not signed by the trusted signing key ({detail}); no entry was "
            "written with it (the store itself may exist). If this endpoint is an emulator, run the operator with "
            "--trust-api-signing-key",
        )
    if isinstance(error, NotFoundError):
        return ReconcileError(
            "StoreGone", f"the Fastly store disappeared during this pass ({detail}); looking it up again", stalled=False
        )
    if isinstance(error, ServerUnavailableError):
        return ReconcileError(
            "FastlyUnavailable", f"Fastly is not answering ({detail}); retrying with backoff", stalled=False
        )
    return ReconcileError("FastlyRejected", f"Fastly refused a request: {detail}")
