"""CPU per Fastly request: the client's own request path (FastlyClient, its transport, httpcore, h11).

A minimal HTTP/1.1 server in a subprocess answers every request at once with a small JSON store; the client
sends GETs from --in-flight tasks at a time and reports its process CPU time per request (wall time on a shared
machine measures the neighbours). Compare code trees by running it with each one's source root:

    PYTHONPATH=<checkout>/operator .venv/bin/python benchmarks/http_requests.py [--requests 8000] [--in-flight 32]

Several runs of each, interleaved, in one sitting: figures from different hours do not compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from fastly_secret_store_operator.fastly import FastlyClient

BODY = json.dumps({"id": "7nLoGzCcs1ZbDD8BaX3jKR", "name": "checkout", "created_at": "2026-11-28T10:00:00Z"})
SERVER = f"""
import asyncio, sys
BODY = {BODY.encode()!r}
ANSWER = b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (len(BODY), BODY)

async def serve(reader, writer):
    try:
        while await reader.readuntil(b"\\r\\n\\r\\n"):
            writer.write(ANSWER)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()

async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""


async def measure(requests: int, in_flight: int) -> float:
    """Client CPU seconds per request, after a warm-up that opens the connections."""
    server = await asyncio.create_subprocess_exec(sys.executable, "-c", SERVER, stdout=asyncio.subprocess.PIPE)
    try:
        assert server.stdout is not None
        port = int(await server.stdout.readline())
        async with FastlyClient("benchmark-token", endpoint=f"http://127.0.0.1:{port}") as client:

            async def worker(count: int) -> None:
                for n in range(count):
                    await client.get_store(f"store{n % 50}")  # 50 paths, as a pass's writes share a store's path

            await asyncio.gather(*(worker(50) for _ in range(in_flight)))
            started = time.process_time()
            await asyncio.gather(*(worker(requests // in_flight) for _ in range(in_flight)))
            return (time.process_time() - started) / (requests // in_flight * in_flight)
    finally:
        server.terminate()
        await server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=8000)
    parser.add_argument("--in-flight", type=int, default=32)
    args = parser.parse_args()
    per_request = asyncio.run(measure(args.requests, args.in_flight))
    print(f"{per_request * 1e6:.0f} us CPU per request ({args.requests} requests, {args.in_flight} in flight)")


if __name__ == "__main__":
    main()
