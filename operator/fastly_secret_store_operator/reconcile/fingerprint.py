"""Keyed fingerprints of entry values: how the operator knows a value changed without keeping the value.

Fastly's digest is random per write, so the operator must remember what it wrote. It records
HMAC-SHA256(operator key, store id, entry name, value) in the object's status. Without the key, which stays in
a Secret only the operator reads, a fingerprint cannot be used to test guesses of the value (an unkeyed hash
could be, for short or structured values). Binding the store id and entry name means equal values in two
entries or two stores do not show as equal fingerprints.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

KEY_BYTES = 32
_VERSION = "v1"


class Fingerprinter:
    def __init__(self, key: bytes) -> None:
        if len(key) < KEY_BYTES:
            raise ValueError(f"the fingerprint key must be at least {KEY_BYTES} bytes")
        self._key = key

    def __repr__(self) -> str:
        return "Fingerprinter(key=<hidden>)"

    def fingerprint(self, store_id: str, entry_name: str, value: bytes) -> str:
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for part in (_VERSION.encode(), store_id.encode(), entry_name.encode()):
            mac.update(len(part).to_bytes(4, "big") + part)
        mac.update(value)
        return f"{_VERSION}:{base64.b64encode(mac.digest()).decode()}"
