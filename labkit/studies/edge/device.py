"""The device's side of an offload: send inputs of each size to the gateway, time each answer.

Run as ``python -m labkit.studies.edge.device HOST PORT MODE REPEATS SIZE...`` (inside the
edge's network namespace where one exists): for every size, ``REPEATS`` times, it opens a
connection, sends an 9-byte header (the mode, ``e``: echo or ``c``: compute in the cloud,
and the payload's length) and the payload, and waits for the 8-byte answer; it prints one
JSON line of ``[size, seconds]`` pairs, in the order measured.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time


def send(host: str, port: int, mode: str, size: int) -> float:
    """Seconds from connecting to the gateway to its answer, for ``size`` bytes sent."""
    payload = bytes(size)
    t0 = time.perf_counter()
    with socket.create_connection((host, port), timeout=300) as s:
        s.sendall(mode.encode() + struct.pack("!Q", size) + payload)
        got = b""
        while len(got) < 8:
            chunk = s.recv(8 - len(got))
            if not chunk:
                raise ConnectionError("the gateway closed the connection before answering")
            got += chunk
    return time.perf_counter() - t0


def main(argv: list[str]) -> None:
    host, port, mode, repeats, sizes = argv[0], int(argv[1]), argv[2], int(argv[3]), [int(s) for s in argv[4:]]
    out = [[size, send(host, port, mode, size)] for _ in range(repeats) for size in sizes]
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
