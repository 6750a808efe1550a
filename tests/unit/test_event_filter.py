"""Which watch events wake a sync loop: most are the operator's own status patches and must not."""

from __future__ import annotations

from types import SimpleNamespace

import kopf

from fastly_secret_store_operator.config import RECONCILE_REQUESTED_ANNOTATION
from fastly_secret_store_operator.handlers import _needs_attention
from fastly_secret_store_operator.tracking import Tracker


def event(generation: int, annotation: str | None = None) -> kopf.Body:
    annotations = {RECONCILE_REQUESTED_ANNOTATION: annotation} if annotation else {}
    return kopf.Body({"metadata": {"uid": "u1", "generation": generation, "annotations": annotations}})


def test_only_deletions_new_generations_and_reconcile_requests_matter() -> None:
    tracker = Tracker()
    memo = SimpleNamespace(runtime=SimpleNamespace(tracker=tracker))
    assert _needs_attention("DELETED", event(1), "u1", memo)
    assert not _needs_attention("MODIFIED", event(1), "u1", memo), "no pass yet: the first one reads the body"
    tracked = tracker.track("u1", "shop", "checkout")
    tracked.reconciled_generation, tracked.requested = 1, None
    assert not _needs_attention("MODIFIED", event(1), "u1", memo), "our own status patch"
    assert _needs_attention("MODIFIED", event(2), "u1", memo)
    assert _needs_attention("MODIFIED", event(1, "now"), "u1", memo)
