"""Writing an object's status: the status it should have, compared with what the API server holds.

Comparing with the cluster's copy (Kopf keeps the daemon's body current) rather than with what this process
last wrote means a status someone wiped or edited by hand is put back by the next pass.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

logger = logging.getLogger(__name__)

Patcher = Callable[[str, str, Mapping[str, Any]], Awaitable[None]]


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch turning `old` into `new` (top-level keys; None removes a key)."""
    patch = {key: value for key, value in new.items() if old.get(key) != value}
    patch.update({key: None for key in old if key not in new})
    return patch


async def write_status(
    patch_status: Patcher, namespace: str, name: str, held: Mapping[str, Any], wanted: Mapping[str, Any]
) -> bool:
    """Patch the status from `held` (the API server's copy) to `wanted`; False when nothing needed writing."""
    patch = merge_patch(held, wanted)
    if not patch:
        return False
    await patch_status(namespace, name, patch)
    return True
