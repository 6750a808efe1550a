"""Waiting for whichever comes first: a wake-up, the daemon being stopped, or a timeout."""

from __future__ import annotations

import asyncio

import kopf


async def wait_for_wake(wake: asyncio.Event, stopped: kopf.DaemonStopped, delay: float | None) -> bool:
    """True when woken, False when `delay` seconds passed or the daemon was stopped."""
    waiters = {
        asyncio.ensure_future(wake.wait()),
        asyncio.ensure_future(stopped.wait()),
    }
    try:
        await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return wake.is_set() and not stopped
