"""What a failed Kubernetes API call raises: the status and its standard phrase, never the answer's body (an
error body can echo what was sent, a Secret among it)."""

from __future__ import annotations

import http


class StartupError(Exception):
    """The operator cannot start; the message is one line for a person."""


class KubeError(Exception):
    """A call that failed: `status` is the HTTP status, None when no answer came (refused, timed out, reset)."""

    def __init__(self, status: int | None, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"HTTP {status} {reason}".rstrip() if status is not None else f"no answer ({reason})")

    @property
    def forbidden(self) -> bool:
        """The API server refused the call to the operator's identity (RBAC): retrying will not help."""
        return self.status == 403

    @property
    def missing(self) -> bool:
        return self.status == 404


class KubeForbidden(KubeError):
    """HTTP 403: RBAC does not allow the call."""


def error_for_status(status: int) -> KubeError:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return (KubeForbidden if status == 403 else KubeError)(status, phrase)


#: What a call to the API server raises when it fails: an error status (a 409, a 5xx), or no answer at all.
API_ERRORS: tuple[type[Exception], ...] = (KubeError,)
