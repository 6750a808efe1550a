"""A local emulator of Fastly's secret store API, faithful to the real API's recorded behaviour
(see tests/emulators/test_fastly_recordings.py), with state to inspect and faults on demand."""

from .accounts import DEFAULT_ACCOUNT, account_id, parse_token_spec
from .api import Route
from .emulator import FastlyEmulator, RecordedRequest
from .faults import FaultInjector, FaultKind, Garbling
from .limits import WriteBudget
from .model import ApiError, Secret, Store
from .running import run_in_thread, serve

__all__ = [
    "DEFAULT_ACCOUNT",
    "ApiError",
    "FastlyEmulator",
    "FaultInjector",
    "FaultKind",
    "Garbling",
    "RecordedRequest",
    "Route",
    "Secret",
    "Store",
    "WriteBudget",
    "account_id",
    "parse_token_spec",
    "run_in_thread",
    "serve",
]
