"""When the next pass runs: backoff after failures, the resync spread, stalled objects."""

from __future__ import annotations

import pytest

from fastly_secret_store_operator.scheduling import KUBERNETES_BACKOFF_CAP, backoff, next_delay


def delay(**overrides: object) -> float | None:
    options: dict[str, object] = {
        "ready": False,
        "stalled": False,
        "retry_after": None,
        "resync_seconds": 600.0,
        "failures": 1,
        "max_backoff": 300.0,
        "stalled_retry": 300.0,
    }
    options.update(overrides)
    return next_delay(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize(("failures", "low", "high"), [(1, 1.6, 2.4), (3, 6.4, 9.6), (20, 24.0, 36.0)])
def test_backoff_doubles_and_is_capped(failures: int, low: float, high: float) -> None:
    for _ in range(50):
        assert low <= backoff(failures, KUBERNETES_BACKOFF_CAP) <= high


def test_ready_objects_resync_spread_around_their_interval_or_never() -> None:
    assert 540 <= (delay(ready=True) or 0) <= 660
    assert delay(ready=True, resync_seconds=0.0) is None


def test_a_reset_time_in_the_past_never_makes_a_busy_loop() -> None:
    assert (delay(retry_after=0.0, failures=4) or 0) >= 16 * 0.8


def test_stalled_objects_wait_for_a_change_or_the_stalled_retry() -> None:
    assert delay(stalled=True) == 300.0


def test_transient_failures_back_off() -> None:
    assert 3.2 <= (delay(failures=2) or 0) <= 4.8
