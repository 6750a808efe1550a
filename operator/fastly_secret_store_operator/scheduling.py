"""When an object's next pass runs: one backoff policy for every failure, and the resync spread."""

from __future__ import annotations

import random

#: Ceiling on the wait after a Kubernetes API failure: the API server coming back must show within seconds.
KUBERNETES_BACKOFF_CAP = 30.0


def backoff(failures: int, cap: float, *, first: float = 2.0) -> float:
    """Exponential, jittered, bounded: about `first`, then twice, four times that … seconds after 1, 2, 3 …
    failures, at most `cap` (all ±20%)."""
    return min(cap, first * 2.0 ** min(max(failures, 1) - 1, 16)) * random.uniform(0.8, 1.2)


def next_delay(
    *,
    ready: bool,
    stalled: bool,
    retry_after: float | None,
    resync_seconds: float,
    failures: int,
    max_backoff: float,
    stalled_retry: float,
) -> float | None:
    """Seconds until the next pass, or None to wait for a change only."""
    if retry_after is not None:
        # Never sooner than the backoff: a reset time already past (clock skew) must not make a 1-second loop.
        return max(retry_after, backoff(failures, max_backoff))
    if ready:
        # Spread resyncs so objects created together do not all check Fastly at the same moment.
        return resync_seconds * random.uniform(0.9, 1.1) if resync_seconds else None
    if stalled:
        return stalled_retry
    return backoff(failures, max_backoff)
