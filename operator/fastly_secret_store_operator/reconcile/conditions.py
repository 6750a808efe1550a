"""Status conditions as kstatus reads them (Flux health checks, `kubectl wait --for=condition=Ready`).

Ready is the summary. Reconciling=True means work is under way or being retried on its own; Stalled=True means
the operator cannot make progress until somebody acts. kstatus maps them to InProgress and Failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

READY, RECONCILING, STALLED = "Ready", "Reconciling", "Stalled"
#: The longest condition message: the status stays small whatever the input (1,000 entries, 255-byte names).
MAX_MESSAGE = 1024


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one reconcile pass concluded, in the words the user will read."""

    reason: str
    message: str
    ready: bool = False
    stalled: bool = False

    @property
    def reconciling(self) -> bool:
        return not self.ready and not self.stalled


def limit_message(parts: Sequence[str], *, suffix: str = "", limit: int = MAX_MESSAGE) -> str:
    """Join `parts` with "; " into at most `limit` characters, ending "…and N more" when some are left out."""
    shown: list[str] = []
    used = len(suffix)
    for index, part in enumerate(parts):
        left = len(parts) - index - 1
        room = limit - used - (len(f"; …and {left} more") if left else 0)
        if len(part) + 2 > room:
            if shown:
                return "; ".join(shown) + f"; …and {len(parts) - index} more" + suffix
            more = f" …and {left} more" if left else ""
            return part[: max(0, limit - len(suffix) - len(more) - 1)] + "…" + more + suffix
        shown.append(part)
        used += len(part) + 2
    return "; ".join(shown) + suffix


def _bounded(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339() -> str:
    return rfc3339(datetime.now(UTC))


def build_conditions(
    outcome: Outcome, previous: Iterable[Mapping[str, Any]], generation: int | None, *, now: str | None = None
) -> list[dict[str, Any]]:
    """The three conditions for `outcome`, keeping each lastTransitionTime while its status holds."""
    before = {str(item.get("type")): item for item in previous}
    stamp = now or now_rfc3339()
    wanted = (
        (READY, outcome.ready),
        (RECONCILING, outcome.reconciling),
        (STALLED, outcome.stalled),
    )
    conditions = []
    for kind, true in wanted:
        status = "True" if true else "False"
        old = before.get(kind)
        transition = old.get("lastTransitionTime") if old and old.get("status") == status else None
        condition: dict[str, Any] = {
            "type": kind,
            "status": status,
            "reason": outcome.reason,
            "message": _bounded(outcome.message),
            "lastTransitionTime": transition or stamp,
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        conditions.append(condition)
    return conditions


def find(conditions: Iterable[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    return next((item for item in conditions if item.get("type") == kind), None)
