"""What a pass tells people: a Kubernetes Event to post (entry names, never values)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Event:
    type: str  # "Normal" or "Warning"
    reason: str
    message: str
