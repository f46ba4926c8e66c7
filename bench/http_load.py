"""Load generator for the HTTP benchmark, run as its own process so it does not share a GIL
or an event loop with the server it measures.

    python -m bench.http_load --port P --concurrency 32 --seconds 10 --warmup 1

Each of the C clients holds one keep-alive HTTP/1.1 connection and sends POST /v1/jobs back to
back. The client is a few lines of raw asyncio (no HTTP library) so that its own CPU cost stays
small next to the server's on a 2-core machine. Prints one JSON line: rate, p50/p99, statuses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from bench.common import percentile

BODY = b'{"task": "bench.noop", "args": {}}'


def request(port: int, body: bytes = BODY) -> bytes:
    return (
        b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (port, len(body), body)
    )


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
    if length:
        await reader.readexactly(length)
    return status, close


async def client(
    port: int, stop_at: float, record_from: float, latencies: list[float], statuses: dict[int, int]
) -> None:
    payload = request(port)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            start = time.perf_counter()
            if start >= stop_at:
                return
            writer.write(payload)
            status, close = await read_response(reader)
            end = time.perf_counter()
            if start >= record_from and end <= stop_at:
                latencies.append(end - start)
                statuses[status] = statuses.get(status, 0) + 1
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


async def run(port: int, concurrency: int, seconds: float, warmup: float) -> dict[str, object]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    now = time.perf_counter()
    record_from, stop_at = now + warmup, now + warmup + seconds
    await asyncio.gather(*(client(port, stop_at, record_from, latencies, statuses) for _ in range(concurrency)))
    accepted = statuses.get(202, 0)
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "accepted_per_s": accepted / seconds,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "statuses": {str(k): v for k, v in statuses.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.port, args.concurrency, args.seconds, args.warmup))))


if __name__ == "__main__":
    main()
