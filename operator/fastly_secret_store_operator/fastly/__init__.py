"""The Fastly secret store API: an async client and client-side sealing. Knows nothing of Kubernetes."""

from ._http import RequestInfo, RetryPolicy, check_endpoint
from .client import DEFAULT_ENDPOINT, ROUTES, FastlyClient
from .errors import (
    AlreadyExistsError,
    ClientKeyRejectedError,
    FastlyError,
    InvalidRequestError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    ServerUnavailableError,
    SigningKeyMismatchError,
    UnauthorizedError,
    UnexpectedResponseError,
    ValueTooLargeError,
)
from .models import ClientKey, Page, RateLimit, SealedValue, Secret, Store, TokenInfo, parse_time
from .sealing import FASTLY_SIGNING_KEY, MAX_VALUE_BYTES, Sealer, verify_client_key

__all__ = [
    "DEFAULT_ENDPOINT",
    "FASTLY_SIGNING_KEY",
    "MAX_VALUE_BYTES",
    "ROUTES",
    "AlreadyExistsError",
    "ClientKey",
    "ClientKeyRejectedError",
    "FastlyClient",
    "FastlyError",
    "InvalidRequestError",
    "NotFoundError",
    "OutcomeUnknownError",
    "Page",
    "RateLimit",
    "RateLimitedError",
    "RequestInfo",
    "RetryPolicy",
    "SealedValue",
    "Sealer",
    "Secret",
    "ServerUnavailableError",
    "SigningKeyMismatchError",
    "Store",
    "TokenInfo",
    "UnauthorizedError",
    "UnexpectedResponseError",
    "ValueTooLargeError",
    "check_endpoint",
    "parse_time",
    "verify_client_key",
]
