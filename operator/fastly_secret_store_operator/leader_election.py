"""Leader election on a coordination.k8s.io/v1 Lease, as controller-runtime does it (`--leader-elect`).

Every replica tries to hold the Lease `fastly-secret-store-operator` in the operator namespace. The one that
holds it reconciles; the others wait as standbys and never start Kopf. The leader renews the Lease every
`retry_period`; a standby takes it over once it has seen the Lease unchanged for the holder's
`leaseDurationSeconds` (by its own monotonic clock, not the holder's `renewTime`: clocks of two nodes may
disagree), or at once when the holder released it on a clean stop (`holderIdentity` cleared).

A leader that cannot renew within `renew_deadline` (shorter than the lease duration, so it stops before any
standby may take over), or that finds another holder in the Lease, has lost it: `run_as_leader` cancels the
work at once and raises `LeadershipLost`, and `run` exits 1 so that the kubelet restarts it as a standby.

Every write carries the resourceVersion last read: a 409 means another replica wrote first, and it won.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

import httpx

from fastly_secret_store_operator.kube.client import REQUEST_TIMEOUT, KubeClient, api_path, json_object
from fastly_secret_store_operator.kube.errors import KubeError, StartupError

logger = logging.getLogger(__name__)

LEASE_NAME = "fastly-secret-store-operator"
LEASE_GROUP, LEASE_VERSION = "coordination.k8s.io", "v1"
#: A released Lease advertises this duration, as client-go's release does; the empty holder already frees it.
RELEASED_LEASE_SECONDS = 1
#: How long a clean stop waits for the release write before leaving the Lease to expire instead.
RELEASE_TIMEOUT = 5.0
#: How long a lost leader waits for its work to end after cancelling it, before exiting regardless.
CANCEL_GRACE = 5.0


@dataclass(frozen=True, slots=True)
class LeaseTimings:
    """controller-runtime's defaults: a leader renews every 2 s, gives up after 10 s without a renewal, and a
    standby takes over 15 s after the last renewal it saw (within 15 + 2 s of the leader dying)."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "leader election needs 0 < retry period < renew deadline < lease duration, got "
                f"{self.retry_period} s, {self.renew_deadline} s, {self.lease_duration} s"
            )


class LeadershipLost(Exception):
    """The leader could not renew its Lease in time, or another replica holds it: it must stop reconciling."""


class _Outcome(Enum):
    LEADING = "leading"
    HELD_BY_OTHER = "held by another replica"
    NO_ANSWER = "no answer"


def default_identity() -> str:
    """The pod's name (env POD_NAME, from the downward API) or the host name, plus a random suffix, as
    controller-runtime does: a restarted process is a new candidate, never the holder its predecessor was."""
    base = os.environ.get("POD_NAME", "").strip() or socket.gethostname() or "fastly-secret-store-operator"
    return f"{base}_{secrets.token_hex(4)}"


def lease_path(namespace: str, name: str | None = None) -> str:
    return api_path("apis", LEASE_GROUP, LEASE_VERSION, "namespaces", namespace, "leases", *([name] if name else []))


def _micro_time(moment: datetime.datetime) -> str:
    """A MicroTime as the API server writes it: RFC 3339 with six fractional digits, in UTC."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Acquires, renews and releases one Lease for one candidate (`identity`)."""

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        identity: str,
        timings: LeaseTimings = LeaseTimings(),
        *,
        name: str = LEASE_NAME,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client, self.namespace, self.identity, self.timings, self.name = client, namespace, identity, timings, name
        self._clock = clock
        self._lease: dict[str, Any] | None = None  # the Lease as last read or written
        self._observed_spec: dict[str, Any] | None = None
        self._observed_at = 0.0  # when this candidate last saw the Lease's spec change
        self._renewed_at = 0.0  # when this candidate last wrote the Lease as its holder
        self._waiting_for: str | None = None  # the holder last logged as the one a standby waits for
        self.leading = False

    @property
    def holder(self) -> str:
        """The holder named in the Lease as last seen ("" when released or never seen)."""
        return str(((self._lease or {}).get("spec") or {}).get("holderIdentity") or "")

    @property
    def where(self) -> str:
        return f"{self.namespace}/{self.name}"

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait as a standby until this candidate holds the Lease (True), or until `stop` is set (False)."""
        while not stop.is_set():
            outcome = await self._try_acquire_or_renew()
            if outcome is _Outcome.LEADING:
                logger.info("Leading: acquired the lease %s as %s", self.where, self.identity)
                self.leading = True
                return True
            if outcome is _Outcome.HELD_BY_OTHER and self.holder != self._waiting_for:
                self._waiting_for = self.holder
                logger.info(
                    "Waiting as a standby: the lease %s is held by %s (this replica is %s)",
                    self.where,
                    self.holder,
                    self.identity,
                )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.timings.retry_period):
                    await stop.wait()
        return False

    async def keep_renewing(self) -> str:
        """Renew every retry period while leading; returns why leadership was lost (it never returns otherwise)."""
        deadline = self.timings.renew_deadline
        while True:
            await asyncio.sleep(self.timings.retry_period)  # the renewal period itself, not a synchronisation
            remaining = self._renewed_at + deadline - self._clock()
            try:
                async with asyncio.timeout(max(remaining, 0.0)):
                    outcome = await self._try_acquire_or_renew()
            except TimeoutError:
                outcome = _Outcome.NO_ANSWER
            if outcome is _Outcome.HELD_BY_OTHER:
                self.leading = False
                return f"the lease {self.where} is now held by {self.holder}"
            if outcome is _Outcome.NO_ANSWER and self._clock() >= self._renewed_at + deadline:
                self.leading = False
                return f"could not renew the lease {self.where} within {deadline:g} s"

    async def release(self) -> None:
        """On a clean stop: clear the holder so that a standby takes over at once. Best effort: a Lease that
        cannot be released simply expires."""
        if not self.leading or self._lease is None:
            return
        self.leading = False
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT):
                released = await self._write_released(self._lease)
                if not released:
                    # A 409: most likely our own renewal, cancelled after it was sent, moved the version on.
                    current = await self._read()
                    if current is None or (current.get("spec") or {}).get("holderIdentity") != self.identity:
                        return  # someone else holds it now: not ours to release
                    released = await self._write_released(current)
        except (KubeError, TimeoutError) as error:
            logger.warning("Could not release the lease %s (%s); it expires by itself", self.where, error)
            return
        if not released:
            logger.warning("Could not release the lease %s (it kept changing); it expires by itself", self.where)
            return
        logger.info("Released the lease %s", self.where)

    async def _write_released(self, lease: dict[str, Any]) -> bool:
        """PUT the Lease with no holder, as client-go's release does; False on a 409."""
        body = copy.deepcopy(lease)
        spec = body.setdefault("spec", {})
        spec["holderIdentity"] = ""
        spec["leaseDurationSeconds"] = RELEASED_LEASE_SECONDS
        spec["renewTime"] = _micro_time(datetime.datetime.now(datetime.UTC))
        try:
            await self.client.request("PUT", lease_path(self.namespace, self.name), body=body)
        except KubeError as error:
            if error.status == 409:
                return False
            raise
        return True

    # One attempt, as client-go's tryAcquireOrRenew.

    async def _try_acquire_or_renew(self) -> _Outcome:
        try:
            if self.leading and self._lease is not None:
                # A renewal writes over the Lease as last written: no read first; a 409 sends us to read it.
                outcome = await self._write_holder(self._lease)
                if outcome is not None:
                    return outcome
            lease = await self._read()
            if lease is None:
                return await self._create()
            self._observe(lease)
            spec = lease.get("spec") or {}
            holder = str(spec.get("holderIdentity") or "")
            if holder and holder != self.identity and not self._expired(spec):
                return _Outcome.HELD_BY_OTHER
            outcome = await self._write_holder(lease)
            if outcome is None:  # a 409: another candidate wrote first, and won; see whom it names
                self._observe(await self._read() or {})
                return _Outcome.HELD_BY_OTHER
            return outcome
        except KubeError as error:
            if error.forbidden:
                raise StartupError(
                    f"not allowed to get, create or update the lease {self.where} (HTTP 403 Forbidden): the "
                    "operator's RBAC must allow get, create and update on leases.coordination.k8s.io in its "
                    "namespace"
                ) from None
            logger.warning("Leader election: the lease %s could not be read or written: %s", self.where, error)
            return _Outcome.NO_ANSWER

    async def _read(self) -> dict[str, Any] | None:
        try:
            return await self.client.get_json(lease_path(self.namespace, self.name), timeouts=self._timeouts())
        except KubeError as error:
            if error.missing:
                return None
            raise

    async def _create(self) -> _Outcome:
        now = datetime.datetime.now(datetime.UTC)
        body = {
            "apiVersion": f"{LEASE_GROUP}/{LEASE_VERSION}",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/name": "fastly-secret-store-operator"},
            },
            "spec": self._holder_spec({}, now),
        }
        try:
            answer = await self.client.request("POST", lease_path(self.namespace), body=body, timeouts=self._timeouts())
        except KubeError as error:
            if error.status == 409:  # another candidate created it first; see whom it names
                self._observe(await self._read() or {})
                return _Outcome.HELD_BY_OTHER
            raise
        self._took(json_object(answer))
        return _Outcome.LEADING

    async def _write_holder(self, lease: dict[str, Any]) -> _Outcome | None:
        """PUT the Lease naming this candidate, with the resourceVersion it was read at; None on a 409."""
        now = datetime.datetime.now(datetime.UTC)
        body = copy.deepcopy(lease)
        body["spec"] = self._holder_spec(lease.get("spec") or {}, now)
        try:
            answer = await self.client.request(
                "PUT", lease_path(self.namespace, self.name), body=body, timeouts=self._timeouts()
            )
        except KubeError as error:
            if error.status == 409:
                return None
            raise
        self._took(json_object(answer))
        return _Outcome.LEADING

    def _holder_spec(self, old: dict[str, Any], now: datetime.datetime) -> dict[str, Any]:
        ours = old.get("holderIdentity") == self.identity
        transitions = int(old.get("leaseTransitions") or 0)
        return {
            **old,
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.timings.lease_duration)),
            "acquireTime": old.get("acquireTime") if ours and old.get("acquireTime") else _micro_time(now),
            "renewTime": _micro_time(now),
            "leaseTransitions": transitions if ours or not old else transitions + 1,
        }

    def _took(self, lease: dict[str, Any]) -> None:
        self._lease = lease
        self._observe(lease)
        self._renewed_at = self._clock()

    def _observe(self, lease: dict[str, Any]) -> None:
        self._lease = lease
        spec = lease.get("spec") or {}
        if spec != self._observed_spec:
            self._observed_spec, self._observed_at = copy.deepcopy(spec), self._clock()

    def _expired(self, spec: dict[str, Any]) -> bool:
        duration = float(spec.get("leaseDurationSeconds") or self.timings.lease_duration)
        return self._clock() >= self._observed_at + duration

    def _timeouts(self) -> httpx.Timeout:
        # No single call may outlast the renew deadline: a hung call would keep a lost leader reconciling.
        read = min(REQUEST_TIMEOUT[1], self.timings.renew_deadline)
        return httpx.Timeout(read, connect=min(REQUEST_TIMEOUT[0], read))


async def run_as_leader(
    elector: LeaderElector,
    work: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    *,
    liveness_url: str | None = None,
) -> None:
    """Wait as a standby until leading (return at once if `stop` is set first), answering `liveness_url` while
    waiting; then run `work` while renewing the Lease, and release it when `work` ends. When leadership is
    lost, set `stop`, cancel `work` at once and raise LeadershipLost."""
    async with standby_health(liveness_url):
        if not await elector.acquire(stop):
            return
    # The renewal task exists before `work` starts: Kopf treats the tasks created after it starts as its own.
    renewal = asyncio.create_task(elector.keep_renewing(), name="lease renewal")
    worker = asyncio.ensure_future(work())
    try:
        await asyncio.wait({renewal, worker}, return_when=asyncio.FIRST_COMPLETED)
        if renewal.done() and not worker.done():
            failure = renewal.exception()
            why = renewal.result() if failure is None else f"the lease renewal failed: {failure!r}"
            logger.error("Lost the leadership: %s; stopping at once, exiting so that a standby takes over", why)
            stop.set()  # with the stop flag set, Kopf does not arm its "ultimate termination" SIGKILL
            worker.cancel()
            await asyncio.wait({worker}, timeout=CANCEL_GRACE)
            raise LeadershipLost(why)
        await worker  # re-raises what the work raised
    finally:
        renewal.cancel()
        await asyncio.wait({renewal})  # its outcome, if any, was read above
        if not worker.done():
            worker.cancel()
            await asyncio.wait({worker}, timeout=CANCEL_GRACE)
        await elector.release()


@contextlib.asynccontextmanager
async def standby_health(liveness_url: str | None) -> AsyncIterator[None]:
    """While a standby waits, answer the liveness URL with 200 (Kopf, which normally serves it, is not running):
    a waiting standby is healthy, and must stay Ready so that a PodDisruptionBudget can count it."""
    if not liveness_url:
        yield
        return
    parsed = urlsplit(liveness_url)
    path = parsed.path or "/"

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request_line = await reader.readline()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # the headers: nothing in them matters here
            parts = request_line.decode("latin-1").split()
            found = len(parts) >= 2 and urlsplit(parts[1]).path == path
            status, body = ("200 OK", b'{"leaderElection": "standby"}') if found else ("404 Not Found", b"{}")
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, parsed.hostname, parsed.port)
    try:
        yield
    finally:
        server.close()
        await server.wait_closed()


__all__ = [
    "LEASE_NAME",
    "LeaderElector",
    "LeadershipLost",
    "LeaseTimings",
    "default_identity",
    "lease_path",
    "run_as_leader",
    "standby_health",
]
