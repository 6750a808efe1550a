"""A local emulator of Fastly's secret store API, faithful to the real API's recorded behaviour
(see tests/emulators/test_fastly_recordings.py), with state to inspect and faults on demand."""

from .api import Route
from .emulator import FastlyEmulator, RecordedRequest
from .faults import FaultInjector, FaultKind
from .limits import WriteBudget
from .model import ApiError, Secret, Store
from .running import run_in_thread, serve

__all__ = [
    "ApiError",
    "FastlyEmulator",
    "FaultInjector",
    "FaultKind",
    "RecordedRequest",
    "Route",
    "Secret",
    "Store",
    "WriteBudget",
    "run_in_thread",
    "serve",
]
