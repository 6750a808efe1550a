"""The defences docs/security.md lists, each shown to hold."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from fastly_secret_store_operator.cli import check_endpoint
from fastly_secret_store_operator.emulators.fastly import FastlyEmulator
from fastly_secret_store_operator.fastly import FastlyClient
from fastly_secret_store_operator.owners import ClaimIndex
from fastly_secret_store_operator.reconcile.conditions import find
from fastly_secret_store_operator.reconcile.fingerprint import Fingerprinter
from fastly_secret_store_operator.reconcile.object import Environment, ObjectView, reconcile_object
from fastly_secret_store_operator.sessions import FastlyOptions, SessionPool

TOKEN = "security-token-canary-0c1f"


class Secrets:
    def __init__(self, data: dict[tuple[str, str], dict[str, bytes]]) -> None:
        self.data = data
        self.reads: list[tuple[str, str]] = []

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        self.reads.append((namespace, name))
        return self.data.get((namespace, name))


async def _noop(fields: Mapping[str, Any]) -> None:
    return None


def test_credentials_in_the_endpoint_url_are_refused() -> None:
    with pytest.raises(SystemExit, match="credentials"):
        check_endpoint("https://user:hunter2@api.fastly.com")


@pytest.mark.parametrize(
    "url", ["http://api.fastly.com", "http://10.0.0.1:8790", "http://fastly.internal", "ftp://x", "api.fastly.com"]
)
def test_plain_http_is_refused_except_to_loopback(url: str) -> None:
    with pytest.raises(SystemExit):
        check_endpoint(url)
    with pytest.raises(ValueError, match=r"http"):
        FastlyClient(TOKEN, endpoint=url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8790", "http://localhost:8790", "http://[::1]:8790", "https://api.fastly.com"]
)
def test_loopback_http_and_https_are_allowed(url: str) -> None:
    assert check_endpoint(url) == url


async def test_the_pinned_signing_key_refuses_a_foreign_client_key() -> None:
    """Without --trust-api-signing-key, only Fastly's production key is trusted: the emulator's is not."""
    secrets = Secrets({("shop", "token"): {"token": TOKEN.encode()}, ("shop", "app"): {"KEY": b"value"}})
    async with FastlyEmulator(tokens=[TOKEN]) as fastly:
        pool = SessionPool(FastlyOptions(endpoint=fastly.url))  # trust_api_signing_key defaults to False
        env = Environment(
            secrets=secrets, connect=pool, fingerprinter=Fingerprinter(b"s" * 32), owners=ClaimIndex(lambda _: None)
        )
        spec = {"apiTokenSecretRef": {"name": "token"}, "entriesFrom": [{"secretRef": {"name": "app"}}]}
        result = await reconcile_object(ObjectView("shop", "x", 1, spec, {}), env, checkpoint=_noop)
        await pool.aclose()
        ready = find(result.status["conditions"], "Ready")
        assert ready is not None
        assert ready["reason"] == "SigningKeyMismatch"
        assert "--trust-api-signing-key" in ready["message"]
        store = fastly.store_named("x")
        assert store is not None
        assert fastly.secret_names(store.id) == [], "nothing may be written with an unverified client key"
        assert not [r for r in fastly.requests if r.route and r.route.endswith("/secrets") and r.method != "GET"]


async def test_tokens_come_only_from_the_objects_own_namespace() -> None:
    """The reference has no namespace field; a stray one is ignored, never followed."""
    secrets = Secrets({("other", "token"): {"token": TOKEN.encode()}})
    pool = SessionPool(FastlyOptions(endpoint="http://127.0.0.1:9"))
    env = Environment(
        secrets=secrets, connect=pool, fingerprinter=Fingerprinter(b"s" * 32), owners=ClaimIndex(lambda _: None)
    )
    spec = {"apiTokenSecretRef": {"name": "token", "namespace": "other"}}
    result = await reconcile_object(ObjectView("shop", "x", 1, spec, {}), env, checkpoint=_noop)
    assert secrets.reads == [("shop", "token")]
    ready = find(result.status["conditions"], "Ready")
    assert ready is not None
    assert ready["reason"] == "CredentialsNotFound"


def test_fingerprints_need_the_key_and_differ_per_store_and_entry() -> None:
    one, other = Fingerprinter(b"a" * 32), Fingerprinter(b"b" * 32)
    value = b"hunter2"
    assert one.fingerprint("store", "ENTRY", value) == one.fingerprint("store", "ENTRY", value)
    assert one.fingerprint("store", "ENTRY", value) != other.fingerprint("store", "ENTRY", value)
    assert one.fingerprint("store", "ENTRY", value) != one.fingerprint("store2", "ENTRY", value)
    assert one.fingerprint("store", "ENTRY", value) != one.fingerprint("store", "ENTRY2", value)
    # No unkeyed hash of the value shows through.
    import hashlib

    for digest in (hashlib.sha256(value).digest(), hashlib.sha1(value).digest(), hashlib.md5(value).digest()):  # noqa: S324
        import base64

        assert base64.b64encode(digest).decode() not in one.fingerprint("store", "ENTRY", value)
    assert "a" * 8 not in repr(one)
    with pytest.raises(ValueError, match="32"):
        Fingerprinter(b"short")
