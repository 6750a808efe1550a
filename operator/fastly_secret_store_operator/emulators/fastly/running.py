"""Running the emulator: in a thread of its own (sync tests, the demo) or in the foreground (the CLI)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from .emulator import FastlyEmulator

logger = logging.getLogger(__name__)

_THREAD_TIMEOUT = 30.0  # seconds to start or stop; a healthy local server needs milliseconds


@contextmanager
def run_in_thread(emulator: FastlyEmulator, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serves `emulator` from its own thread and event loop while the block runs; yields its base URL."""
    loop = asyncio.new_event_loop()
    started: Future[str] = Future()

    def serve_forever() -> None:
        asyncio.set_event_loop(loop)
        try:
            started.set_result(loop.run_until_complete(emulator.start(host, port)))
        except BaseException as error:
            started.set_exception(error)
            loop.close()
            return
        loop.run_forever()
        loop.run_until_complete(emulator.stop())
        loop.close()

    thread = threading.Thread(target=serve_forever, name="fastly-emulator", daemon=True)
    thread.start()
    try:
        url = started.result(timeout=_THREAD_TIMEOUT)
    except BaseException:
        thread.join(_THREAD_TIMEOUT)
        raise
    try:
        yield url
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_THREAD_TIMEOUT)


async def serve(host: str, port: int, tokens: list[str] | None, **kwargs: Any) -> None:
    """Runs an emulator until cancelled and says where it is and which signing key it signs client keys with.
    `kwargs` go to FastlyEmulator."""
    kwargs.setdefault("record_requests", False)  # a long-running server must not grow a request log
    emulator = FastlyEmulator(tokens=tokens, **kwargs)
    url = await emulator.start(host, port)
    try:
        accounts = emulator.accounts.names
        accepts = (
            f"{emulator.accounts.count} token(s) in {len(accounts)} account(s) given with --token"
            if tokens
            else "any non-empty token, in the default account"
        )
        print(f"Fastly API emulator listening on {url} (accepts {accepts} in the Fastly-Key header)", flush=True)
        print(f"Its client keys are signed by Ed25519 key {emulator.signing_key_b64}", flush=True)
        print(
            f"Point the operator at it: --fastly-endpoint {url} --trust-api-signing-key "
            f"(or FASTLY_API_ENDPOINT={url} FASTLY_USE_API_SIGNING_KEY=1)",
            flush=True,
        )
        logger.info("Fastly API emulator listening on %s", url)
        await asyncio.Event().wait()  # until cancelled
    finally:
        await emulator.stop()
